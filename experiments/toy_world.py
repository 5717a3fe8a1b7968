"""The toy world the learning experiments share (issue 26): small enough that a tiny model converges on a CPU in
minutes, rich enough to test the paper's claims.

A two-coloured square on a flat, still background, 32x32 pixels (4x4 latents), moves left, right, up or down; the
caption names the direction ("the square moves left"), and the square starts near the middle whatever its direction,
so only the caption tells where it goes. Videos are 36 frames long, so the curriculum's 35-frame clips fit. The tiny
VAE is taught these frames once, frozen and shared by every model (OUT/base-model), so a model's cost is its UNet
alone. Decision 123 says why each lever was chosen; `converge.py` prints the clean-frame curve.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from small_scale import (  # experiments/: the script's folder is on the path
    clean_frames,
    clean_threshold,
    data_clips,
    first_frames,
    held_out_videos,
    sample_clip,
    seeded_model,
    train_run,
    trained_vae_model,
    write_videos,
)

from loopanimate.data.synthetic import moving_square
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline

SIDE = 32  # pixels a side: 4x4 latents, a quarter of the 64-pixel world's cost per frame
DIRECTIONS = ("left", "right", "up", "down")
VIDEO_FRAMES = 36  # the curriculum's 35-frame ALSS clips need 35 source frames at their least stride (2)
SPEED = 0.3  # pixels a frame: 35 frames move the square 10 px, so it stays in the picture
CLIP_FRAMES = 8  # enough for a loop out and back; the curriculum sets its own
HELD_OUT_SEED = 1_000_000
# `loopanimate train` settings for this world (decision 123: the sweep that chose them); small_scale.train_run's
# defaults otherwise (the whole UNet, AdamW, warm-up 50 steps, image dropout 10%).
SETTINGS = {
    "resolution": SIDE,
    "num_frames": CLIP_FRAMES,
    "max_stride": 8,  # 0.3-2.4 px a step: the clean threshold grows with the data's own steps (decision 123)
    "batch_size": 16,
    "learning_rate": 2e-3,
    "text_dropout": 0.1,
}


def direction_of(seed: int) -> str:
    return DIRECTIONS[seed % len(DIRECTIONS)]


def caption(direction: str) -> str:
    return f"the square moves {direction}"


def video(seed: int):
    """(frames, caption) of the training or held-out video `seed`: a quarter of the seeds go each way."""
    direction = direction_of(seed)
    frames = moving_square(direction, VIDEO_FRAMES, (SIDE, SIDE), seed=seed, speed=SPEED, flat_background=True)
    return frames, caption(direction)


def world_clips(folder: Path, num_frames: int, count: int) -> list[np.ndarray]:
    """The first `count` training clips of `folder` as this world's training samples them, (F, H, W, 3) uint8."""
    return data_clips(folder, num_frames, count, side=SIDE, max_stride=SETTINGS["max_stride"])


def toy_parser(doc: str, steps: int) -> argparse.ArgumentParser:
    """The options every toy-world experiment shares; each script adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", default="runs/toy-world", help="the world's folder, shared by every experiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="UNet initialisation and data order")
    parser.add_argument("--steps", type=int, default=steps, help="training steps per model")
    parser.add_argument("--sample-steps", type=int, default=25, help="denoising steps when generating")
    parser.add_argument("--fast", action="store_true", help="tiny sizes: only checks that everything runs")
    return parser


class ToyWorld:
    """The world's videos, held-out pictures, frozen VAE and clean-frame measure, made once under `out` and reused.
    `fast`: a handful of videos and a VAE barely trained, to check that a script runs."""

    def __init__(self, out: Path, fast: bool = False) -> None:
        videos, held_out, vae_steps = (8, 2, 2) if fast else (2000, 16, 3000)
        started = time.perf_counter()
        self.out, self.fast = out, fast
        self.videos = out / "videos"
        train_paths = write_videos(self.videos, videos, 0, video)
        self.held_seeds = list(range(HELD_OUT_SEED, HELD_OUT_SEED + held_out))
        held_paths = write_videos(out / "held-out", held_out, HELD_OUT_SEED, video)
        self.pictures = first_frames(held_paths)
        self.base, self.vae_psnr = trained_vae_model(out, train_paths, held_paths, vae_steps)
        base = load_pipeline(self.base)
        record = out / "world.json"
        if not record.is_file():
            threshold = clean_threshold(base, world_clips(self.videos, CLIP_FRAMES, min(videos, 32)))
            record.write_text(json.dumps({"clean_threshold": threshold}))
        self.threshold = json.loads(record.read_text())["clean_threshold"]
        self.held_videos = held_out_videos(base, held_paths)
        print(f"toy world in {out}: VAE PSNR {self.vae_psnr:.1f} dB, clean threshold {self.threshold:.4f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip

    def train(self, name: str, seed: int, steps: int, unet_config: dict | None = None, **settings) -> Path:
        """One model of this world: the base model with its UNet drawn from `seed` (and `unet_config`), trained
        `steps` steps with SETTINGS (changed by `settings`) on data ordered by `seed`, in OUT/NAME-seedSEED."""
        model = seeded_model(self.base, seed, self.out, **(unet_config or {}))
        output = self.out / f"{name}-seed{seed}"
        merged = {**SETTINGS, "batch_size": 2 if self.fast else SETTINGS["batch_size"], **settings}
        return train_run(model, self.videos, output, steps, resume=True, seed=seed, **merged)

    def clips(self, pipe: LoopAnimatePipeline, num_frames: int, steps: int) -> list[np.ndarray]:
        """One clip (F, H, W, 3) in [0, 1] per held-out picture, captioned with its own direction."""
        return [
            sample_clip(pipe, picture, caption(direction_of(seed)), num_frames, steps, seed=i)
            for i, (picture, seed) in enumerate(zip(self.pictures, self.held_seeds, strict=True))
        ]

    def clean_share(self, clips: list[np.ndarray]) -> float:
        """The share of the clips' frames that are clean (small_scale.clean_frames) against their picture's video."""
        pairs = zip(clips, self.held_videos, strict=True)
        return float(np.mean([clean_frames(clip, video, self.threshold) for clip, video in pairs]))


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a share: honest near 0 and 1, where the normal one is not."""
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(centre - half), float(centre + half)
