"""The paper's MITDF claim in the toy world: with the image in the down blocks only and the text in the mid and up
blocks, the model keeps the picture *and* follows the text. Per seed, three copies of one tiny model, trained alike on
the world's captioned videos, differ only in `context_routing`: `mitdf` (as built), `everywhere` (image and text
tokens concatenated in every cross-attention) and `text` (no image tokens; the picture enters at conv_in only).

For every held-out picture, one clip per caption (left, right, up, down), scored by:
  - text-following: the share of clips whose optical flow a nearest-centroid classifier, fitted on the world's data
    clips, names as the captioned direction (chance 0.25), with a 95% Wilson interval over all seeds' clips;
  - image fidelity: MSE-F0 and CLIP-I (weight-free embedding) against the picture;
  - seam ratio, and the share of clean frames of the clips captioned with the picture's own direction.

    python experiments/mitdf_ablation.py [--steps 2000] [--seeds 0 1 2] [--out runs/toy-world]
    python experiments/mitdf_ablation.py --fast --out DIR     # a few seconds: checks the script, measures nothing

Runs and scores are kept under --out, so `--seeds 0` and `--seeds 1` may run side by side (one core each) and a last
call with every seed only builds the table.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from small_scale import clean_frames, mean_scores, sample_clip, seed_cell, write_results
from toy_world import (  # experiments/: the script's folder is on the path
    CLIP_FRAMES,
    DIRECTIONS,
    ToyWorld,
    caption,
    direction_of,
    toy_parser,
    wilson_interval,
    world_clips,
)

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.evaluation import WeightFreeEmbedding, clip_i, mse_f0, seam_ratio
from loopanimate.evaluation.report import number_table
from loopanimate.export import to_uint8
from loopanimate.models.unet import CONTEXT_ROUTINGS
from loopanimate.pipelines import load_pipeline

FLOW_SIDE = 128  # flow is measured at this size
MOVING = 1.0  # pixels (at FLOW_SIDE) of summed flow above which a pixel counts as moving
STILL = "still"  # the class of a clip in which nothing moves


def flow_features(clip: np.ndarray) -> np.ndarray | None:
    """(mean x flow, mean y flow) over the moving pixels from frame 0 to the clip's middle frame (the peak of an ALSS
    loop), summed over consecutive steps; None when nothing moves."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grays = [
        cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (FLOW_SIDE, FLOW_SIDE))
        for frame in to_uint8(clip[: len(clip) // 2 + 1])
    ]
    total = sum(dis.calc(a, b, None) for a, b in itertools.pairwise(grays))  # (h, w, 2): x, y
    moving = np.linalg.norm(total, axis=-1) > MOVING
    if moving.sum() < 4:
        return None
    return np.array([total[..., 0][moving].mean(), total[..., 1][moving].mean()])


class MotionClassifier:
    """Nearest centroid, per direction, of standardised flow features of clips whose direction is known."""

    def __init__(self, clips: list[np.ndarray], directions: list[str]) -> None:
        features: dict[str, list[np.ndarray]] = {direction: [] for direction in DIRECTIONS}
        for clip, direction in zip(clips, directions, strict=True):
            found = flow_features(clip)
            if found is not None:
                features[direction].append(found)
        every = np.concatenate([np.stack(rows) for rows in features.values() if rows])
        self.scale = every.std(axis=0) + 1e-6
        self.centroids = {name: np.mean(rows, axis=0) / self.scale for name, rows in features.items() if rows}

    def __call__(self, clip: np.ndarray) -> str:
        found = flow_features(clip)
        if found is None:
            return STILL
        return min(self.centroids, key=lambda name: np.linalg.norm(found / self.scale - self.centroids[name]))


def data_classifier(world: ToyWorld, count: int) -> MotionClassifier:
    """Fitted on `count` training clips, sampled as the trainer samples them (ALSS), directions from the file names."""
    clips = [clip.astype(np.float32) / 255 for clip in world_clips(world.videos, CLIP_FRAMES, count)]
    seeds = [int(path.stem[1:]) for path in sorted(world.videos.glob("*.mp4"))[:count]]
    return MotionClassifier(clips, [direction_of(seed) for seed in seeds])


def score(world: ToyWorld, pipe, classifier: MotionClassifier, steps: int) -> tuple[list[dict], np.ndarray]:
    """Every caption for every held-out picture: a row of measures per clip; the first picture's clips for a sheet."""
    embed, rows, sheet = WeightFreeEmbedding(), [], []
    for number, (picture, seed) in enumerate(zip(world.pictures, world.held_seeds, strict=True)):
        image = torch.from_numpy(picture).permute(2, 0, 1).float() / 255
        for direction in DIRECTIONS:
            frames = sample_clip(pipe, picture, caption(direction), CLIP_FRAMES, steps, seed=number)
            clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
            found = classifier(frames)
            own = direction == direction_of(seed)
            rows.append(
                {
                    "follows_text": float(found == direction),
                    "still": float(found == STILL),
                    "mse_f0": mse_f0(clip, image),
                    "clip_i": clip_i(clip, image, embed),
                    "seam": seam_ratio(clip),
                    "clean": float(np.mean(clean_frames(frames, world.held_videos[number], world.threshold)))
                    if own
                    else None,
                }
            )
            if number == 0:
                sheet.append(frames)
    return rows, np.concatenate(sheet)


def table(results: dict[str, dict[int, list[dict]]]) -> str:
    lines = []
    for routing, per_seed in results.items():
        pooled = [row for rows in per_seed.values() for row in rows]
        low, high = wilson_interval(int(sum(row["follows_text"] for row in pooled)), len(pooled))
        seeds = [mean_scores(rows) for rows in per_seed.values()]
        lines.append(
            [routing, f"{mean_scores(pooled)['follows_text']:.2f} [{low:.2f}, {high:.2f}]",
             *(seed_cell([s[key] for s in seeds], digits) for key, digits in
               (("follows_text", 2), ("still", 2), ("mse_f0", 4), ("clip_i", 3), ("seam", 2), ("clean", 2)))]
        )  # fmt: skip
    header = ["routing", "follows the text↑ [95% CI]", "per seed", "still", "MSE-F0↓", "CLIP-I↑", "Seam≈1", "clean↑"]
    return number_table(header, lines)


def main() -> None:
    parser = toy_parser(__doc__, steps=2000)
    args = parser.parse_args()
    quiet_libraries()
    if args.fast:
        args.steps, args.sample_steps, args.seeds = 2, 2, args.seeds[:1]
    started = time.perf_counter()
    world = ToyWorld(Path(args.out), fast=args.fast)
    folder = world.out / "mitdf"
    folder.mkdir(exist_ok=True)
    classifier = data_classifier(world, 8 if args.fast else 200)
    held_clips = [clip.astype(np.float32) / 255 for clip in world_clips(world.out / "held-out", CLIP_FRAMES, 16)]
    hits = [classifier(clip) == direction_of(seed) for clip, seed in zip(held_clips, world.held_seeds, strict=False)]
    print(f"flow classifier on held-out data clips: {np.mean(hits):.0%} right", flush=True)

    results: dict[str, dict[int, list[dict]]] = {routing: {} for routing in CONTEXT_ROUTINGS}
    for seed, routing in itertools.product(args.seeds, CONTEXT_ROUTINGS):
        record = folder / f"scores-{routing}-seed{seed}-{args.steps}.json"
        if not record.is_file():
            final = world.train(f"mitdf-{routing}", seed, args.steps, unet_config={"context_routing": routing})
            rows, sheet = score(world, load_pipeline(final), classifier, args.sample_steps)
            contact_sheet(to_uint8(sheet), columns=CLIP_FRAMES, thumb_width=64).save(
                folder / f"sheet-{routing}-seed{seed}.png"
            )
            record.write_text(json.dumps(rows))
        results[routing][seed] = json.loads(record.read_text())
        print(f"seed {seed}, {routing}: {mean_scores(results[routing][seed])} ({time.perf_counter() - started:.0f} s)")
    summary = {
        "steps": args.steps,
        "seeds": args.seeds,
        "classifier_accuracy_on_data": float(np.mean(hits)),
        "chance": 1 / len(DIRECTIONS),
        "results": {routing: {str(seed): mean_scores(rows) for seed, rows in per_seed.items()} for routing, per_seed in
                    results.items()},
    }  # fmt: skip
    write_results(folder, table(results), summary)


if __name__ == "__main__":
    main()
