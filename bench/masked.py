"""Salient-object animation in diffusion, measured: does the background stay the photo, and does the object move?

On the tiny trained model (`--model`, default runs/tiny-cpu/final from configs/tiny-cpu.yaml) and the coffee photo at
64x64, with the automatic salient mask against no mask, for each loop closure (seeds averaged):
- outside the mask: mean absolute difference of every frame to the input ([0, 1] scale) after compositing, and the
  latents' drift from the input's latent there before decoding;
- Motion inside and outside the mask;
- the seam ratio.
The motion engine on the same photo at its own size is the reference. Writes a contact sheet (`--sheet`).

    python bench/masked.py [--model runs/tiny-cpu/final] [--seeds 3] [--steps 10] [--sheet docs/masked-diffusion.png]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from loopanimate.animate import LoopRequest, make_loop, salient_alpha
from loopanimate.contact_sheet import contact_sheet
from loopanimate.evaluation.pixel_metrics import motion, seam_ratio
from loopanimate.pipelines import load_pipeline
from loopanimate.pipelines.loop_closure import LOOP_CLOSURES
from loopanimate.reader import read_picture

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffee.png"
SIDE = 64


def scores(video: np.ndarray, picture: np.ndarray, outside: np.ndarray) -> dict:
    """video (F, H, W, 3) and picture (H, W, 3) in [0, 1]; outside (H, W) bool."""
    frames = video.transpose(0, 3, 1, 2)  # (F, 3, H, W)
    return {
        "outside_error": float(np.abs(video[:, outside] - picture[outside]).mean()),
        "motion_inside": motion(frames, region=~outside),
        "motion_outside": motion(frames, region=outside),
        "seam": seam_ratio(frames),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/tiny-cpu/final")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sheet", default=None, help="PNG: unmasked and masked loops, every 3rd frame")
    args = parser.parse_args()
    pipe = load_pipeline(args.model)
    photo = read_picture(EXAMPLE)
    mask = PIL.Image.fromarray((salient_alpha(photo) * 255).round().astype(np.uint8))
    # The input and the mask as the pipeline crops them: (H, W, 3) in [0, 1] and (H, W).
    pixels = pipe.video_processor.preprocess([photo], height=SIDE, width=SIDE, resize_mode="crop")
    picture = (pixels[0].permute(1, 2, 0).numpy() + 1) / 2
    pixel_mask = pipe.preprocess_masks(mask, [photo], SIDE, SIDE)[0, 0].numpy()
    outside = pixel_mask == 0
    latent_outside = F.interpolate(torch.from_numpy(pixel_mask)[None, None], size=(SIDE // 8,) * 2, mode="area")[0, 0]
    latent_outside = latent_outside == 0
    image_latents = pipe.encode_image_latents(pixels)[0]  # (4, h, w)
    print(f"model {args.model}; coffee photo at {SIDE}x{SIDE}; automatic mask covers {1 - outside.mean():.0%}; "
          f"{args.steps} steps, text guidance off, {args.seeds} seeds")  # fmt: skip
    print("| loop closure | mask | outside error (after compositing) | latent drift outside | Motion inside | "
          "Motion outside | Seam |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    sheets = []
    for closure in LOOP_CLOSURES:
        for masked in (False, True):
            rows, drifts = [], []
            for seed in range(args.seeds):
                settings = {
                    "num_frames": 35, "num_inference_steps": args.steps, "guidance_scale_text": 1.0,
                    "height": SIDE, "width": SIDE, "loop_closure": closure, "mask": mask if masked else None,
                }  # fmt: skip
                video = pipe(photo, "the cup sways", generator=torch.Generator().manual_seed(seed), output_type="np",
                             **settings).frames[0]  # fmt: skip
                rows.append(scores(video, picture, outside))
                latents = pipe(
                    photo,
                    "the cup sways",
                    generator=torch.Generator().manual_seed(seed),
                    output_type="latent",
                    **settings,
                ).frames[0]  # (4, F, h, w), before decoding
                drift = (latents - image_latents[:, None]).abs()[:, :, latent_outside]
                drifts.append(float(drift.mean()))
                if seed == 0 and closure == LOOP_CLOSURES[0]:
                    sheets.append(video)
            mean = {key: statistics.mean(row[key] for row in rows if row[key] is not None) for key in rows[0]}
            print(f"| {closure} | {'salient' if masked else 'none'} | {mean['outside_error']:.4f} | "
                  f"{statistics.mean(drifts):.4f} | {mean['motion_inside']:.2f} | {mean['motion_outside']:.2f} | "
                  f"{mean['seam']:.2f} |")  # fmt: skip
    reference = make_loop(LoopRequest(photo, "the cup sways", num_frames=35))
    video = reference.frames.astype(np.float32) / 255
    outside_engine = reference.mask == 0
    row = scores(video, video[0], outside_engine)
    print(f"| motion engine (512x341) | salient | {row['outside_error']:.4f} | - | {row['motion_inside']:.2f} | "
          f"{row['motion_outside']:.2f} | {row['seam']:.2f} |")  # fmt: skip
    if args.sheet:
        both = np.concatenate(sheets, axis=2)  # unmasked | masked, side by side
        contact_sheet((both * 255).round().astype(np.uint8)[:-1], columns=6, every=3, thumb_width=256).save(args.sheet)
        print(f"wrote {args.sheet}: left without a mask, right with the salient mask (cycle, seed 0)")


if __name__ == "__main__":
    main()
