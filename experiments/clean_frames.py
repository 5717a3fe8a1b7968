"""How long must the tiny model train before its frames are clean? The seed-0 ALSS run of `alss_ablation.py` goes on
from its checkpoint, in a folder of its own, to each of --steps, and its held-out clips are scored at each: the share
of clean frames (small_scale.clean_frames), the other measures of the ablation table, and a contact sheet.

    python experiments/clean_frames.py [--steps 1000 2000 3000] [--out runs/alss-seeds]   # after alss_ablation.py
    python experiments/clean_frames.py --fast --out DIR     # DIR from `alss_ablation.py --fast`: checks the script
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from alss_ablation import FRAMES, score  # experiments/: the script's folder is on the path
from small_scale import clean_threshold, data_clips, first_frames, held_out_videos, train_run

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.evaluation.report import number_table
from loopanimate.export import to_uint8
from loopanimate.pipelines import load_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 2000, 3000], help="where to score")
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--out", default="runs/alss-seeds", help="alss_ablation.py's folder")
    parser.add_argument("--fast", action="store_true", help="a few steps: only checks that everything runs")
    args = parser.parse_args()
    quiet_libraries()
    out = Path(args.out)
    start = out / "train-alss-seed0"
    config = json.loads((start / "config.json").read_text())
    if args.fast:
        args.steps, args.sample_steps = [config["max_steps"] + 1], 2
    longer = out / "train-alss-seed0-longer"
    if not (longer / "checkpoints").is_dir():  # go on from the ablation's checkpoint, not from the start
        shutil.copytree(start / "checkpoints", longer / "checkpoints")

    held_paths = sorted((out / "held-out").glob("*.mp4"))
    pictures = first_frames(held_paths)
    base = load_pipeline(out / "base-model")
    threshold = clean_threshold(base, data_clips(out / "videos", FRAMES, 16))
    videos = held_out_videos(base, held_paths)
    rows = {}
    for steps in args.steps:
        record = longer / f"scores-{steps}.json"
        if not record.is_file():
            final = train_run(Path(config["model"]), Path(config["data"]), longer, steps, resume=True,
                              sampling="alss", seed=config["seed"], checkpoint_every=500)  # fmt: skip
            means, clips = score(load_pipeline(final), pictures, videos, longer / "clips" / str(steps),
                                 args.sample_steps, threshold)  # fmt: skip
            contact_sheet(to_uint8(np.concatenate(clips[:4])), columns=FRAMES, thumb_width=64).save(
                longer / f"sheet-{steps}.png"
            )
            record.write_text(json.dumps(means))
        rows[steps] = json.loads(record.read_text())
        print(f"{steps} steps: " + ", ".join(f"{key} {value:.3f}" for key, value in rows[steps].items() if value))
    columns = (("clean", 2), ("seam", 2), ("loop_c", 3), ("motion", 2), ("mse_f0", 4))
    table = number_table(
        ["steps", "clean frames↑", "Seam≈1", "Loop-C↑", "Motion", "MSE-F0↓"],
        [[str(steps), *(f"{r[key]:.{digits}f}" for key, digits in columns)] for steps, r in rows.items()],
    )
    (longer / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
