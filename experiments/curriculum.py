"""The paper's three-stage curriculum at small scale, against training 35-frame clips from the start for the same
compute (paper §3). Both start from a tiny video model trained on plain, non-looping 15-frame clips (AnimateDiff's
role: `alss_ablation.py`'s `train-plain-seed0`, trained here if that run is not in --out).

  curriculum: `loopanimate train` with configs/stage1.yaml (15 frames: conv_in, spatial cross-attention, motion
              modules), then stage2.yaml (21 frames: conv_in, motion modules), then stage3.yaml (35 frames: conv_in,
              motion-module Q and V), each scaled down (64x64, whole steps below, learning rates x5);
  35 frames:  stage 1's modules and learning rate on 35-frame clips, for as many frames in all (steps x frames) as the
              three stages together.

Each stage is one `loopanimate train` process, timed, its peak resident memory read from the kernel. Both results are
scored on 35-frame loops from held-out pictures: seam ratio, Motion, Loop-C and the share of clean frames.

    python experiments/curriculum.py [--stage-steps 200 150 150] [--out runs/alss-seeds]
    python experiments/curriculum.py --fast      # a few seconds: checks the script, measures nothing
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
from alss_ablation import PROMPT, video  # the same videos: experiments/ is on the path
from small_scale import (  # experiments/small_scale.py: the script's folder is on the path
    SIDE,
    clean_frames,
    clean_threshold,
    data_clips,
    experiment_parser,
    first_frames,
    held_out_videos,
    sample_clip,
    seeded_model,
    train_run,
    trained_vae_model,
    write_results,
    write_videos,
)

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.evaluation import WeightFreeEmbedding, loop_consistency, motion, seam_ratio
from loopanimate.evaluation.report import number_table
from loopanimate.export import to_uint8
from loopanimate.pipelines import load_pipeline

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
STAGE_FRAMES = (15, 21, 35)
LOOP_FRAMES = 35
LEARNING_RATE_SCALE = 5  # the paper's rates are for a pretrained SD-size model; the tiny one needs larger steps


def scaled_config(stage: str, model: Path, data: Path, output: Path, steps: int, **changes) -> dict:
    """configs/STAGE.yaml at this experiment's scale."""
    config = yaml.safe_load((CONFIGS / f"{stage}.yaml").read_text())
    config.update(
        model=str(model),
        data=str(data),
        output=str(output),
        resolution=SIDE,
        batch_size=4,
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
        text_dropout=0.0,
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
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{path}: loopanimate train exited with {child.returncode}")
    result = {"seconds": time.perf_counter() - started, "peak_mib": usage.ru_maxrss / 1024}
    record.write_text(json.dumps(result))
    return result


def score(pipe, pictures: list[np.ndarray], videos: list[np.ndarray], threshold: float, steps: int):
    """Mean measures of one 35-frame loop per held-out picture; the first loop for a sheet."""
    embed, rows, first = WeightFreeEmbedding(), [], None
    for number, (picture, own_video) in enumerate(zip(pictures, videos, strict=True)):
        frames = sample_clip(pipe, picture, PROMPT, LOOP_FRAMES, steps, seed=number)
        clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        rows.append(
            {
                "seam": seam_ratio(clip),
                "motion": motion(clip),
                "loop_c": loop_consistency(clip, embed),
                "clean": float(np.mean(clean_frames(frames, own_video, threshold))),
            }
        )
        first = frames if first is None else first
    return {key: float(np.mean([r[key] for r in rows if r[key] is not None])) for key in rows[0]}, first


def main() -> None:
    parser = experiment_parser(__doc__, out="runs/alss-seeds", vae_steps=1000)  # alss_ablation.py's folder
    parser.add_argument("--stage-steps", type=int, nargs=3, default=[200, 150, 150], help="steps of stages 1, 2, 3")
    parser.add_argument("--pretrain-steps", type=int, default=500, help="the plain-clip start, if trained here")
    args = parser.parse_args()
    quiet_libraries()
    if args.fast:
        args.stage_steps, args.pretrain_steps, args.videos, args.held_out = [1, 1, 1], 1, 4, 1
        args.vae_steps, args.sample_steps = 1, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train_paths = write_videos(out / "videos", args.videos, 0, video)
    held_paths = write_videos(out / "held-out", args.held_out, 1_000_000, video)
    pictures = first_frames(held_paths)
    base, _ = trained_vae_model(out, train_paths, held_paths, args.vae_steps)
    start = train_run(seeded_model(base, 0, out), out / "videos", out / "train-plain-seed0", args.pretrain_steps,
                      sampling="plain", seed=0)  # fmt: skip
    base_pipe = load_pipeline(base)
    threshold = clean_threshold(base_pipe, data_clips(out / "videos", LOOP_FRAMES, 16))
    videos = held_out_videos(base_pipe, held_paths)

    folder = out / "curriculum"
    folder.mkdir(exist_ok=True)
    runs: dict[str, list[dict]] = {"curriculum": [], "35 frames": []}
    model = start
    for number, steps in enumerate(args.stage_steps, start=1):
        output = folder / f"stage{number}"
        runs["curriculum"].append(run_stage(scaled_config(f"stage{number}", model, out / "videos", output, steps),
                                            folder / f"stage{number}.yaml"))  # fmt: skip
        model = output / "final"
    frames_in_all = sum(steps * frames for steps, frames in zip(args.stage_steps, STAGE_FRAMES, strict=True))
    steps_35 = round(frames_in_all / LOOP_FRAMES)
    output_35 = folder / "frames35"
    config_35 = scaled_config("stage1", start, out / "videos", output_35, steps_35, num_frames=LOOP_FRAMES)
    runs["35 frames"].append(run_stage(config_35, folder / "frames35.yaml"))

    results, sheets = {}, []
    for name, final in (("start (plain clips)", start), ("curriculum", model), ("35 frames", output_35 / "final")):
        results[name], first = score(load_pipeline(final), pictures, videos, threshold, args.sample_steps)
        stages = runs.get(name, [])
        results[name]["seconds"] = sum(stage["seconds"] for stage in stages) if stages else None
        results[name]["peak_mib"] = max(stage["peak_mib"] for stage in stages) if stages else None
        sheets.append(first)
    contact_sheet(to_uint8(np.concatenate(sheets)), columns=LOOP_FRAMES, thumb_width=48).save(folder / "sheet.png")

    rows = []
    for name, r in results.items():
        seconds = "—" if r["seconds"] is None else f"{r['seconds']:.0f}"
        peak = "—" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        rows.append([name, seconds, peak, f"{r['seam']:.2f}", f"{r['motion']:.2f}", f"{r['loop_c']:.3f}",
                     f"{r['clean']:.2f}"])  # fmt: skip
    table = number_table(["model", "training s", "peak MiB", "Seam≈1", "Motion", "Loop-C↑", "clean frames↑"], rows)
    summary = {
        "stage_steps": args.stage_steps,
        "steps_35": steps_35,
        "frames_in_all": frames_in_all,
        "clean_threshold": threshold,
        "stages": runs,
        "results": results,
    }
    write_results(folder, table, summary)


if __name__ == "__main__":
    main()
