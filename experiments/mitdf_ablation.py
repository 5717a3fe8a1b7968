"""The paper's MITDF claim at small scale: with the image in the down blocks only and the text in the mid and up blocks,
the model keeps the picture *and* follows the text. Three copies of one tiny model, trained on the same captioned
videos, differ only in `context_routing`: `mitdf` (as built), `everywhere` (image and text tokens concatenated in
every cross-attention) and `text` (no image tokens; the picture enters at conv_in only).

Steps (all written under --out; a rerun reuses what is there):
  1. synthetic videos of a two-coloured square that moves left, right, up, down or spins, over a still background,
     the motion named in the caption among distractor words; the first frame never tells the motion;
  2. the tiny VAE taught their frames, its scaling factor fitted (small_scale.trained_vae_model);
  3. three runs of `loopanimate.training.train` (the whole UNet, 15-frame ALSS clips), one per routing;
  4. for every held-out first frame, a clip for every caption; measured: text-following (the share of clips whose
     optical flow is classified as the captioned motion, by a nearest-centroid classifier fitted on the data's clips),
     MSE-F0, CLIP-I (weight-free embedding) and the seam ratio.

    python experiments/mitdf_ablation.py [--videos 300] [--steps 500] [--out runs/mitdf-ablation]
    python experiments/mitdf_ablation.py --fast      # a few seconds: checks the script, measures nothing
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from small_scale import (  # experiments/small_scale.py: the script's folder is on the path
    SIDE,
    data_clips,
    experiment_parser,
    first_frames,
    sample_clip,
    seeded_model,
    train_run,
    trained_vae_model,
    write_results,
    write_videos,
)

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.data.synthetic import MOTIONS, motion_caption, moving_square
from loopanimate.evaluation import WeightFreeEmbedding, clip_i, mse_f0, seam_ratio
from loopanimate.evaluation.report import number_table
from loopanimate.export import to_uint8
from loopanimate.models.unet import CONTEXT_ROUTINGS
from loopanimate.pipelines import load_pipeline

FRAMES, VIDEO_FRAMES = 15, 30  # 30 frames at 0.7 px a frame: the square stays in the picture
FLOW_SIDE = 128  # flow is measured at this size
MOVING = 1.0  # pixels (at FLOW_SIDE) of summed flow above which a pixel counts as moving
STILL = "still"  # the class of a clip in which nothing moves


def motion_of(seed: int) -> str:
    return list(MOTIONS)[seed % len(MOTIONS)]


def video(seed: int):
    motion = motion_of(seed)
    caption = motion_caption(motion, np.random.default_rng(seed))
    return moving_square(motion, VIDEO_FRAMES, (SIDE, SIDE), seed=seed), caption


def flow_features(clip: np.ndarray) -> np.ndarray | None:
    """(mean x flow, mean y flow, mean curl) over the moving pixels from frame 0 to the clip's middle frame (the peak of
    an ALSS loop), summed over consecutive steps; None when nothing moves."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grays = [
        cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (FLOW_SIDE, FLOW_SIDE))
        for frame in to_uint8(clip[: len(clip) // 2 + 1])
    ]
    total = sum(dis.calc(a, b, None) for a, b in itertools.pairwise(grays))  # (h, w, 2): x, y
    moving = np.linalg.norm(total, axis=-1) > MOVING
    if moving.sum() < 4:
        return None
    curl = np.gradient(total[..., 1], axis=1) - np.gradient(total[..., 0], axis=0)  # twice the turn, radians
    return np.array([total[..., 0][moving].mean(), total[..., 1][moving].mean(), curl[moving].mean() * FLOW_SIDE / 8])


class MotionClassifier:
    """Nearest centroid, per motion, of standardised flow features of clips whose motion is known."""

    def __init__(self, clips: list[np.ndarray], motions: list[str]) -> None:
        features = {motion: [] for motion in MOTIONS}
        for clip, motion in zip(clips, motions, strict=True):
            found = flow_features(clip)
            if found is not None:
                features[motion].append(found)
        every = np.concatenate([np.stack(rows) for rows in features.values() if rows])
        self.scale = every.std(axis=0) + 1e-6
        self.centroids = {motion: np.mean(rows, axis=0) / self.scale for motion, rows in features.items() if rows}

    def __call__(self, clip: np.ndarray) -> str:
        found = flow_features(clip)
        if found is None:
            return STILL
        return min(self.centroids, key=lambda motion: np.linalg.norm(found / self.scale - self.centroids[motion]))


def data_classifier(folder: Path, count: int) -> MotionClassifier:
    """Fitted on `count` training clips, sampled as the trainer samples them (ALSS), motions from the file names."""
    clips = [clip.astype(np.float32) / 255 for clip in data_clips(folder, FRAMES, count)]
    seeds = [int(path.stem[1:]) for path in sorted(folder.glob("*.mp4"))[:count]]
    return MotionClassifier(clips, [motion_of(seed) for seed in seeds])


def evaluate(pipe, pictures, seeds, classifier, steps: int) -> tuple[dict, np.ndarray]:
    """Every caption for every picture: mean text-following, MSE-F0, CLIP-I, seam; and a sheet row per motion."""
    embed, rows, sheet = WeightFreeEmbedding(), [], []
    for number, (picture, seed) in enumerate(zip(pictures, seeds, strict=True)):
        image = torch.from_numpy(picture).permute(2, 0, 1).float() / 255
        for motion in MOTIONS:
            caption = motion_caption(motion, np.random.default_rng(seed))
            frames = sample_clip(pipe, picture, caption, FRAMES, steps, seed=number)
            clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
            found = classifier(frames)
            rows.append(
                {
                    "follows_text": float(found == motion),
                    "still": float(found == STILL),
                    "mse_f0": mse_f0(clip, image),
                    "clip_i": clip_i(clip, image, embed),
                    "seam": seam_ratio(clip),
                }
            )
            if number == 0:
                sheet.append(frames)
    means = {key: float(np.mean([r[key] for r in rows if r[key] is not None])) for key in rows[0]}
    return means, np.concatenate(sheet)


def main() -> None:
    parser = experiment_parser(__doc__, out="runs/mitdf-ablation", vae_steps=600)
    parser.add_argument("--steps", type=int, default=500, help="UNet training steps per model")
    args = parser.parse_args()
    quiet_libraries()
    if args.fast:
        args.videos, args.held_out, args.steps, args.vae_steps, args.sample_steps = 5, 1, 2, 2, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    train_paths = write_videos(out / "videos", args.videos, 0, video)
    held_seeds = list(range(1_000_000, 1_000_000 + args.held_out))
    held_paths = write_videos(out / "held-out", args.held_out, held_seeds[0], video)
    pictures = first_frames(held_paths)
    base, psnr = trained_vae_model(out, train_paths, held_paths, args.vae_steps)
    classifier = data_classifier(out / "videos", min(args.videos, 100))
    held_clips = [clip.astype(np.float32) / 255 for clip in data_clips(out / "held-out", FRAMES, args.held_out)]
    accuracy = np.mean([classifier(c) == motion_of(s) for c, s in zip(held_clips, held_seeds, strict=True)])
    print(f"VAE PSNR {psnr:.1f} dB; flow classifier on held-out data clips: {accuracy:.0%} right")

    results = {}
    for routing in CONTEXT_ROUTINGS:
        model = seeded_model(base, 0, out, context_routing=routing)
        final = train_run(model, out / "videos", out / f"train-{routing}", args.steps, text_dropout=0.1)
        print(f"{routing}: trained {args.steps} steps ({time.perf_counter() - started:.0f} s)")
        results[routing], sheet = evaluate(load_pipeline(final), pictures, held_seeds, classifier, args.sample_steps)
        contact_sheet(to_uint8(sheet), columns=FRAMES, thumb_width=64).save(out / f"sheet-{routing}.png")

    table = number_table(
        ["routing", "follows the text↑", "still", "MSE-F0↓", "CLIP-I↑", "Seam≈1"],
        [[routing, f"{r['follows_text']:.2f}", f"{r['still']:.2f}", f"{r['mse_f0']:.4f}", f"{r['clip_i']:.3f}",
          f"{r['seam']:.2f}"] for routing, r in results.items()],
    )  # fmt: skip
    summary = {
        "videos": args.videos,
        "held_out": args.held_out,
        "steps": args.steps,
        "vae_psnr_db": psnr,
        "classifier_accuracy_on_data": float(accuracy),
        "chance": 1 / len(MOTIONS),
        "seconds": time.perf_counter() - started,
        "results": results,
    }
    write_results(out, table, summary)


if __name__ == "__main__":
    main()
