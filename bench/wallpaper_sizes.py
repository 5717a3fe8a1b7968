"""What a user's clock and memory show for the whole `loopanimate animate` at wallpaper sizes, each in a fresh process.

Sizes 512x512, 1080x1920 (a phone) and 3840x2160 (4K), 35 and 140 frames, MP4, motion engine, the bundled coffee
photo cropped to fill each box (`--crop`). Peak memory is the child's peak resident size (`os.wait4`). Goals (issue
25): peak memory grows by less than 10% from 35 to 140 frames; 1080x1920 x 35 frames in <= 3 s. Then the default
size: time of 35 frames at long sides 512 ... 1920 against the photo's own 600 px.

    python bench/wallpaper_sizes.py [--runs 3] [--fast]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "coffee.png"
PROMPT = "the coffee cup sways"
SIZES = ["512x512", "1080x1920", "3840x2160"]
FRAMES = [35, 140]


def run_once(arguments: list[str], environment: dict) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one fresh `loopanimate animate ARGUMENTS`."""
    command = [str(Path(sys.executable).with_name("loopanimate")), "animate", str(EXAMPLE), "--prompt", PROMPT]
    start = time.perf_counter()
    child = subprocess.Popen([*command, *arguments], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(child.stderr.read().decode()[-2000:])
    return seconds, usage.ru_maxrss / 1024


def measure(arguments: list[str], environment: dict, runs: int) -> tuple[float, float]:
    results = [run_once(arguments, environment) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fast", action="store_true", help="one small size and two frame counts, one run (tests)")
    args = parser.parse_args()
    sizes, frames, runs = (["256x256"], [5, 20], 1) if args.fast else (SIZES, FRAMES, args.runs)
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        output = str(Path(folder) / "loop.mp4")
        run_once(["-o", output, "--frames", "3"], environment)  # warm-up: bytecode and file caches
        print(f"whole `loopanimate animate` to MP4, fresh process, median of {runs} (time), max (memory)")
        print("| size | frames | seconds | peak MiB | memory vs fewest frames |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for size in sizes:
            first = None
            for count in frames:
                arguments = ["-o", output, "--size", size, "--crop", "--frames", str(count)]
                seconds, peak = measure(arguments, environment, runs)
                first = first or peak
                print(f"| {size} | {count} | {seconds:.2f} | {peak:.0f} | {peak / first:.2f} |", flush=True)
        print()
        print("default size: 35 frames at each long side (the photo is 600x400)")
        print("| long side | seconds | peak MiB |")
        print("| ---: | ---: | ---: |")
        for side in [256] if args.fast else [512, 768, 1024, 1920]:
            seconds, peak = measure(["-o", output, "--size", f"{side}x{side}"], environment, runs)
            print(f"| {side} | {seconds:.2f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
