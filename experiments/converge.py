"""Does the toy world converge? One tiny model (MITDF routing, the world's settings) trained in steps, its held-out
clips scored after each: the share of clean frames, the minutes it took, seam and Motion. Goal: 90% clean within
20 minutes of this 2-core CPU (issue 26).

    python experiments/converge.py [--steps 500 1000 2000 3000] [--learning-rate 2e-3] [--ema-decay 0.99]
    python experiments/converge.py --fast --out DIR     # a few seconds: checks the script, measures nothing
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from toy_world import CLIP_FRAMES, SETTINGS, ToyWorld, toy_parser  # experiments/: the script's folder is on the path

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.evaluation import motion, seam_ratio
from loopanimate.evaluation.report import number_table
from loopanimate.export import to_uint8
from loopanimate.pipelines import load_pipeline


def main() -> None:
    parser = toy_parser(__doc__, steps=0)
    parser.set_defaults(steps=None, seeds=[0])
    parser.add_argument("--at", type=int, nargs="+", default=[500, 1000, 2000, 3000], help="steps to score at")
    parser.add_argument("--learning-rate", type=float, default=SETTINGS["learning_rate"])
    parser.add_argument("--ema-decay", type=float, default=None, help="score an EMA of the weights")
    args = parser.parse_args()
    quiet_libraries()
    if args.fast:
        args.at, args.sample_steps = [1, 2], 2
    world = ToyWorld(Path(args.out), fast=args.fast)
    seed = args.seeds[0]
    changed = args.learning_rate != SETTINGS["learning_rate"] or args.ema_decay
    # With the world's settings this is mitdf_ablation.py's model of this seed, which reuses it.
    name = f"converge-lr{args.learning_rate:g}-ema{args.ema_decay or 0:g}" if changed else "mitdf-mitdf"
    folder = world.out / f"{name}-seed{seed}"
    rows, seconds = [], 0.0
    for steps in args.at:
        record = folder / f"scores-{steps}.json"
        if not record.is_file():
            started = time.perf_counter()
            final = world.train(name, seed, steps, {"context_routing": "mitdf"}, learning_rate=args.learning_rate,
                                ema_decay=args.ema_decay, checkpoint_every=min(args.at))  # fmt: skip
            trained = time.perf_counter() - started
            clips = world.clips(load_pipeline(final), CLIP_FRAMES, args.sample_steps)
            videos = [torch.from_numpy(clip).permute(0, 3, 1, 2).float() for clip in clips]
            scores = {
                "clean": world.clean_share(clips),
                "seam": float(np.mean([seam_ratio(video) for video in videos])),
                "motion": float(np.mean([motion(video) for video in videos])),
                "train_seconds": trained,
            }
            record.write_text(json.dumps(scores))
            sheet = to_uint8(np.concatenate([*clips[:4], *(video[:CLIP_FRAMES] for video in world.held_videos[:4])]))
            contact_sheet(sheet, columns=CLIP_FRAMES, thumb_width=48).save(folder / f"sheet-{steps}.png")
        scores = json.loads(record.read_text())
        seconds += scores["train_seconds"]
        rows.append([str(steps), f"{seconds / 60:.1f}", f"{scores['clean']:.2f}", f"{scores['seam']:.2f}",
                     f"{scores['motion']:.2f}"])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    table = number_table(["steps", "training min", "clean frames↑", "Seam≈1", "Motion"], rows)
    (folder / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
