"""Loops beyond the paper, measured: loop closure modes, long loops in windows, motion strength.

1. seam ratio and Loop-C of each `loop_closure` mode (none, condition, cycle) on the tiny trained model
   (`--model`, default runs/tiny-cpu/final from configs/tiny-cpu.yaml; the tiny random model if it is missing),
   averaged over seeds;
2. time and peak memory of a cycle loop at 35, 70 and 140 frames (each in a fresh process);
3. Motion against motion_strength 0, 0.25, 0.5, 0.75, 1, for the diffusion model and the motion engine.

  python bench/loops.py [--model runs/tiny-cpu/final] [--seeds 4] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from measure import peak_since, run_child, start_peak  # bench/measure.py: the script's folder is on the path

from loopanimate.pipelines.loop_closure import LOOP_CLOSURES

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffee.png"
SIDE = 64


def load(model: str):
    from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
    from loopanimate.pipelines.tiny import tiny_components

    if Path(model).is_dir():
        return load_pipeline(model), model
    return LoopAnimatePipeline(**tiny_components()), "tiny random model"


def generate(pipe, frames: int, steps: int, seed: int, **options) -> torch.Tensor:
    from loopanimate.reader import read_picture

    video = pipe(
        read_picture(EXAMPLE),
        "the cup sways",
        num_frames=frames,
        num_inference_steps=steps,
        guidance_scale_text=1.0,
        height=SIDE,
        width=SIDE,
        generator=torch.Generator().manual_seed(seed),
        output_type="pt",
        **options,
    ).frames[0]
    return video  # (F, 3, H, W) in [0, 1]


def child(frames: int, model: str, steps: int) -> dict:
    pipe, _ = load(model)
    before = start_peak("cpu")
    start = time.perf_counter()
    generate(pipe, frames, steps, seed=0, loop_closure="cycle")
    return {"seconds": time.perf_counter() - start, "peak_bytes": peak_since("cpu", before)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/tiny-cpu/final")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="denoising steps")
    parser.add_argument("--child", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import json

        print(json.dumps(child(int(args.child[0]), args.model, args.steps)))
        return

    from loopanimate.cli import quiet_libraries
    from loopanimate.engines import animate_without_weights
    from loopanimate.evaluation import WeightFreeEmbedding, loop_consistency, motion, seam_ratio
    from loopanimate.image import fit_image
    from loopanimate.reader import read_picture

    quiet_libraries()
    pipe, name = load(args.model)
    embed = WeightFreeEmbedding()
    print(f"model: {name}; {SIDE}x{SIDE}, {args.steps} denoising steps, {args.seeds} seeds, weight-free embeddings")

    print("\n| loop_closure | Seam≈1 | Loop-C↑ | Motion |\n| --- | ---: | ---: | ---: |")
    for mode in LOOP_CLOSURES:
        videos = [generate(pipe, 15, args.steps, seed, loop_closure=mode) for seed in range(args.seeds)]
        seams = [s for s in (seam_ratio(v) for v in videos) if s is not None]
        loop_c = statistics.mean(loop_consistency(v, embed) for v in videos)
        moving = statistics.mean(motion(v) for v in videos)
        print(f"| {mode} | {statistics.mean(seams):.2f} | {loop_c:.3f} | {moving:.2f} |")

    print(
        "\n| frames (cycle) | seconds | ratio to 35 | peak memory above the model (MiB) |\n| --- | ---: | ---: | ---: |"
    )
    base = None
    for frames in (35, 70, 140):
        result = run_child(__file__, [str(frames), "--model", args.model, "--steps", str(args.steps)])
        base = base or result["seconds"]
        seconds, memory = result["seconds"], result["peak_bytes"] / 2**20
        print(f"| {frames} | {seconds:.2f} | {seconds / base:.2f} | {memory:.0f} |")

    picture = np.asarray(fit_image(read_picture(EXAMPLE), max_side=256))
    print("\n| motion_strength | Motion (diffusion) | Motion (motion engine) |\n| --- | ---: | ---: |")
    for strength in (0.0, 0.25, 0.5, 0.75, 1.0):
        diffusion = statistics.mean(
            motion(generate(pipe, 15, args.steps, seed, motion_strength=strength, loop_closure="none"))
            for seed in range(args.seeds)
        )
        frames = animate_without_weights(picture, "the cup sways", num_frames=35, motion_strength=strength)
        engine = motion(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
        print(f"| {strength:.2f} | {diffusion:.2f} | {engine:.2f} |")


if __name__ == "__main__":
    main()
