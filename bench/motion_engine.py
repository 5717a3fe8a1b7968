"""Time of the weight-free motion engine: 35 frames at 512x512 (goal: under 0.5 s on a 2-core CPU), and its growth.

Times the whole call `animate_without_weights` (saliency mask, clean plate, every frame) on the bundled coffee photo,
median of `--repeats`, then how it grows with the frame count and the picture's side, as a ratio to 35 frames at 512.

    python bench/motion_engine.py [--repeats 3] [--prompt "the cup sways gently"]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from loopanimate.engines import animate_without_weights
from loopanimate.engines.plate import clean_plate
from loopanimate.engines.saliency import salient_mask
from loopanimate.image import fit_image
from loopanimate.reader import read_picture

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffee.png"


def median_seconds(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompt", default="the cup sways gently")
    args = parser.parse_args()
    photo = read_picture(EXAMPLE)

    def picture(side: int) -> np.ndarray:
        return np.asarray(fit_image(photo, size=(side, side)))

    base_image = picture(512)
    base = median_seconds(lambda: animate_without_weights(base_image, args.prompt, 35), args.repeats)
    mask_time = median_seconds(lambda: salient_mask(base_image), args.repeats)
    hole = (salient_mask(base_image) > 0.02).astype(np.uint8)
    plate_time = median_seconds(lambda: clean_plate(base_image, hole), args.repeats)
    print(f"prompt {args.prompt!r}, {cv2.getNumThreads()} OpenCV threads, median of {args.repeats}")
    print(
        f"35 frames at 512x512: {base:.2f} s (goal < 0.5 s); of which saliency mask {mask_time:.2f} s, "
        f"clean plate {plate_time:.2f} s, {(base - mask_time - plate_time) / 33 * 1000:.1f} ms per moving frame"
    )
    print()
    print("| frames | side | seconds | ratio to 35 @ 512 |")
    print("| --- | --- | --- | --- |")
    for frames, side in [(18, 512), (35, 512), (70, 512), (140, 512), (35, 256), (35, 768), (35, 1024)]:
        image = base_image if side == 512 else picture(side)
        seconds = median_seconds(lambda i=image, f=frames: animate_without_weights(i, args.prompt, f), args.repeats)
        print(f"| {frames} | {side} | {seconds:.2f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
