"""The paper's three-stage curriculum in the toy world, against training 35-frame clips from the start for the same
compute (paper §3). Per seed, both arms start from the seed's MITDF model of `mitdf_ablation.py` (8-frame clips, the
role AnimateDiff's short-clip motion module plays; trained here if it is not in --out).

  curriculum: `loopanimate train` with configs/stage1.yaml (15 frames: conv_in, spatial cross-attention, motion
              modules), then stage2.yaml (21 frames: conv_in, motion modules), then stage3.yaml (35 frames: conv_in,
              motion-module Q and V), each at this world's size and batch, learning rates x LEARNING_RATE_SCALE;
  35 frames:  stage 1's modules and learning rate on 35-frame clips, for as many frames in all (steps x frames) as the
              three stages together.

Each stage is one `loopanimate train` process, timed, its peak resident memory read from the kernel. Both arms are
scored on 35-frame loops from the held-out pictures, captioned with their own direction: seam ratio, Loop-C, Motion and
the share of clean frames.

    python experiments/curriculum.py [--stage-steps 300 200 200] [--seeds 0 1 2] [--out runs/toy-world]
    python experiments/curriculum.py --fast --out DIR     # a few seconds: checks the script, measures nothing
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from small_scale import seed_cell, write_results
from toy_world import SETTINGS, SIDE, ToyWorld, toy_parser

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.evaluation import WeightFreeEmbedding, loop_consistency, motion, seam_ratio
from loopanimate.evaluation.report import number_table
from loopanimate.export import to_uint8
from loopanimate.pipelines import load_pipeline

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
STAGE_FRAMES = (15, 21, 35)
LOOP_FRAMES = 35
LEARNING_RATE_SCALE = 10  # the paper's rates are for an SD-size model; the tiny one needs larger steps
MEASURES = (("seam", 2), ("loop_c", 3), ("motion", 2), ("clean", 2))


def scaled_config(stage: str, model: Path, data: Path, output: Path, steps: int, seed: int, fast: bool, **changes):
    """configs/STAGE.yaml at this world's size, batch and data order."""
    config = yaml.safe_load((CONFIGS / f"{stage}.yaml").read_text())
    config.update(
        model=str(model),
        data=str(data),
        output=str(output),
        seed=seed,
        resolution=SIDE,
        batch_size=2 if fast else SETTINGS["batch_size"],
        num_workers=1,
        learning_rate=config["learning_rate"] * LEARNING_RATE_SCALE,
        lr_warmup_steps=min(50, steps),
        max_steps=steps,
        checkpoint_every=steps,
        keep_checkpoints=1,
        log_every=max(1, steps // 10),
        gradient_checkpointing=False,  # nothing to save at this size, and it costs time
        mixed_precision="no",
        image_dropout=0.1,
        text_dropout=SETTINGS["text_dropout"],
    )
    config.update(changes)
    return config


def run_stage(config: dict, path: Path) -> dict:
    """`loopanimate train PATH` in a fresh process: seconds and peak resident memory (MiB). A finished stage is
    reused: its record is kept next to its config."""
    record = path.with_suffix(".json")
    if record.is_file():
        return json.loads(record.read_text())
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "loopanimate", "train", "--config", str(path)], env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, in KiB on Linux
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{path}: loopanimate train exited with {os.waitstatus_to_exitcode(status)}")
    result = {"seconds": time.perf_counter() - started, "peak_mib": usage.ru_maxrss / 1024}
    record.write_text(json.dumps(result))
    return result


def score(world: ToyWorld, model: Path, steps: int) -> tuple[dict, np.ndarray]:
    """Mean measures of one 35-frame loop per held-out picture; the first loop for a sheet."""
    clips = world.clips(load_pipeline(model), LOOP_FRAMES, steps)
    embed = WeightFreeEmbedding()
    videos = [torch.from_numpy(clip).permute(0, 3, 1, 2).float() for clip in clips]
    scores = {
        "seam": float(np.mean([seam_ratio(video) for video in videos])),
        "loop_c": float(np.mean([loop_consistency(video, embed) for video in videos])),
        "motion": float(np.mean([motion(video) for video in videos])),
        "clean": world.clean_share(clips),
    }
    return scores, clips[0]


def arms(world: ToyWorld, start: Path, seed: int, stage_steps: list[int], fast: bool) -> dict[str, tuple[Path, list]]:
    """Both arms trained from `start`: each one's final model and its stages' records."""
    folder = world.out / f"curriculum-seed{seed}"
    folder.mkdir(exist_ok=True)
    stages, model = [], start
    for number, steps in enumerate(stage_steps, start=1):
        output = folder / f"stage{number}"
        config = scaled_config(f"stage{number}", model, world.videos, output, steps, seed, fast)
        stages.append(run_stage(config, folder / f"stage{number}.yaml"))
        model = output / "final"
    frames_in_all = sum(steps * frames for steps, frames in zip(stage_steps, STAGE_FRAMES, strict=True))
    output = folder / "frames35"
    config = scaled_config("stage1", start, world.videos, output, round(frames_in_all / LOOP_FRAMES), seed, fast,
                           num_frames=LOOP_FRAMES)  # fmt: skip
    peer = run_stage(config, folder / "frames35.yaml")
    return {"curriculum": (model, stages), "35 frames": (output / "final", [peer])}


def main() -> None:
    parser = toy_parser(__doc__, steps=2000)
    parser.add_argument("--stage-steps", type=int, nargs=3, default=[300, 200, 200], help="steps of stages 1, 2, 3")
    args = parser.parse_args()
    quiet_libraries()
    if args.fast:
        args.stage_steps, args.steps, args.sample_steps, args.seeds = [1, 1, 1], 2, 2, args.seeds[:1]
    world = ToyWorld(Path(args.out), fast=args.fast)
    results: dict[str, list[dict]] = {"start (8-frame MITDF model)": [], "curriculum": [], "35 frames": []}
    sheets = []
    for seed in args.seeds:
        start = world.train("mitdf-mitdf", seed, args.steps, unet_config={"context_routing": "mitdf"})
        runs = {"start (8-frame MITDF model)": (start, []), **arms(world, start, seed, args.stage_steps, args.fast)}
        for name, (model, stages) in runs.items():
            record = model.parent / f"loop-scores-{args.sample_steps}.json"
            if not record.is_file():
                scores, first = score(world, model, args.sample_steps)
                np.save(model.parent / "first-loop.npy", first)
                record.write_text(json.dumps(scores))
            scores = json.loads(record.read_text())
            scores["seconds"] = sum(stage["seconds"] for stage in stages) if stages else None
            scores["peak_mib"] = max(stage["peak_mib"] for stage in stages) if stages else None
            results[name].append(scores)
            if seed == args.seeds[0]:
                sheets.append(np.load(model.parent / "first-loop.npy"))
        print(f"seed {seed}: " + "; ".join(f"{name} {r[-1]}" for name, r in results.items()), flush=True)
    contact_sheet(to_uint8(np.concatenate(sheets)), columns=LOOP_FRAMES, thumb_width=32).save(
        world.out / "curriculum-sheet.png"
    )
    rows = []
    for name, per_seed in results.items():
        timed = per_seed[0]["seconds"] is not None
        rows.append([name, seed_cell([r["seconds"] for r in per_seed], 0) if timed else "—",
                     seed_cell([r["peak_mib"] for r in per_seed], 0) if timed else "—",
                     *(seed_cell([r[key] for r in per_seed], digits) for key, digits in MEASURES)])  # fmt: skip
    table = number_table(["model", "training s", "peak MiB", "Seam≈1", "Loop-C↑", "Motion", "clean frames↑"], rows)
    summary = {"stage_steps": args.stage_steps, "seeds": args.seeds, "clean_threshold": world.threshold,
               "results": results}  # fmt: skip
    folder = world.out / "curriculum"
    folder.mkdir(exist_ok=True)
    write_results(folder, table, summary)


if __name__ == "__main__":
    main()
