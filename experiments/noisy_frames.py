"""Why are some generated frames noise-like? Do they follow the sampling seed (the initial noise of those frames) or
the frame position (a bug)? Three tests on a trained tiny model, and a look at one training batch:

  1. several seeds per held-out picture: where the noise-like frames fall, per position and per seed;
  2. the same initial noise rolled by --roll frames along time: do the noise-like frames move with it?
  3. a training batch as `diffusion_loss` builds it: per frame, the clean latents, the noise, the condition, the
     timestep, and the signal-to-noise ratio the latents' scale gives;
  4. the VAE's latent scale: the standard deviation of its scaled latents on the data (Stable Diffusion's
     scaling_factor is chosen so that this is about 1).

A frame is noise-like when it is further from both of its neighbours in time than any frame of the data is
(`small_scale.noise_threshold`): an outlier in its clip, like the frames the first ablation showed.

    python experiments/noisy_frames.py --run runs/alss-ablation --model runs/alss-ablation/train-alss/final
    python experiments/noisy_frames.py --fast  # seconds on a tiny random model: checks the script, measures nothing
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from alss_ablation import PROMPT, video  # the ablation's videos: experiments/ is on the path
from diffusers import DDPMScheduler
from small_scale import (  # experiments/small_scale.py: the script's folder is on the path
    SIDE,
    data_clips,
    first_frames,
    neighbour_distances,
    noise_threshold,
    sample_clip,
    write_videos,
)

from loopanimate.cli import quiet_libraries
from loopanimate.models import frame_conditioning
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.pipelines.tiny import tiny_components
from loopanimate.training.loss import clip_latents

FRAMES = 15


def noise_like(pipe, picture, seed: int, threshold: float, steps: int, latents=None) -> np.ndarray:
    clip = sample_clip(pipe, picture, PROMPT, FRAMES, steps, seed, latents=latents)
    return neighbour_distances(clip) > threshold  # (F,)


def initial_noise(seed: int) -> torch.Tensor:
    """The noise the pipeline draws for `seed` (randn_tensor on a CPU generator is torch.randn)."""
    return torch.randn((1, 4, FRAMES, SIDE // 8, SIDE // 8), generator=torch.Generator().manual_seed(seed))


def seed_or_position(pipe, pictures, seeds: int, roll: int, threshold: float, steps: int) -> dict:
    """Tests 1 and 2."""
    flags = np.array(
        [[noise_like(pipe, picture, seed, threshold, steps) for seed in range(seeds)] for picture in pictures]
    )  # (pictures, seeds, F)
    # Two seeds of one picture: how often a frame noise-like in one is noise-like in the other, against chance.
    same, chance = [], []
    for per_seed in flags:
        for a in range(seeds):
            for b in range(a + 1, seeds):
                if per_seed[a].any():
                    same.append(per_seed[b][per_seed[a]].mean())
                    chance.append(per_seed[b].mean())
    # Roll the noise of the first seed that has noise-like frames: do they stay at their positions or move along?
    rolled_seed = next((seed for seed in range(seeds) if flags[:, seed].any()), 0)
    rolled = np.array(
        [
            noise_like(
                pipe, picture, rolled_seed, threshold, steps, latents=initial_noise(rolled_seed).roll(roll, dims=2)
            )
            for picture in pictures
        ]
    )  # (pictures, F)
    before = flags[:, rolled_seed]
    moved = before.sum()
    # What the initial noise of noise-like frames looks like: its per-frame mean and spread, against the others..
    noise = torch.stack([initial_noise(seed)[0].transpose(0, 1).flatten(1) for seed in range(seeds)])
    frame_mean, frame_std = noise.mean(dim=2).numpy(), noise.std(dim=2).numpy()  # (seeds, F)
    bad = flags.any(axis=0)  # (seeds, F): noise-like for some picture
    return {
        "flags": flags.astype(int).tolist(),
        "noise_abs_mean_noise_like": float(np.abs(frame_mean[bad]).mean()) if bad.any() else None,
        "noise_abs_mean_other": float(np.abs(frame_mean[~bad]).mean()) if (~bad).any() else None,
        "noise_std_noise_like": float(frame_std[bad].mean()) if bad.any() else None,
        "noise_std_other": float(frame_std[~bad].mean()) if (~bad).any() else None,
        "noise_like_share": float(flags.mean()),
        "noise_like_per_position": flags.sum(axis=(0, 1)).tolist(),
        "clips": int(flags.shape[0] * flags.shape[1]),
        "same_position_other_seed": float(np.mean(same)) if same else None,
        "chance": float(np.mean(chance)) if chance else None,
        "rolled_noise_kept_position": float((rolled & before).sum() / moved) if moved else None,
        "rolled_noise_moved_with_noise": float((rolled & np.roll(before, roll, axis=1)).sum() / moved)
        if moved
        else None,
        "rolled_seed": rolled_seed,
        "noise_like_frames_rolled_seed": int(moved),
    }


def training_batch(pipe: LoopAnimatePipeline, data: Path) -> list[dict]:
    """Test 3: per frame of one ALSS training clip, as diffusion_loss builds it."""
    clip = data_clips(data, FRAMES, 1)[0]
    pixels = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 127.5 - 1  # (F, 3, H, W)
    latents = clip_latents(pipe, {"pixel_values": pixels[None]}, torch.device("cpu"))  # (1, 4, F, h, w)
    condition = frame_conditioning(latents[:, :, 0], FRAMES)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(latents.shape, generator=generator)
    timestep = torch.tensor([500])
    noisy = scheduler.add_noise(latents, noise, timestep)
    alpha = scheduler.alphas_cumprod[timestep].item()
    return [
        {
            "frame": frame,
            "latent_std": float(latents[0, :, frame].std()),
            "noise_std": float(noise[0, :, frame].std()),
            "noisy_std": float(noisy[0, :, frame].std()),
            "condition_mask": float(condition[0, 4, frame].mean()),
            "condition_latent_std": float(condition[0, :4, frame].std()),
            "timestep": int(timestep),
            "snr": alpha * float(latents[0, :, frame].var()) / (1 - alpha),
        }
        for frame in range(FRAMES)
    ]


def latent_scale(pipe: LoopAnimatePipeline, data: Path) -> float:
    """Test 4: the standard deviation of the scaled latents of eight data clips."""
    clips = np.concatenate(data_clips(data, FRAMES, 8))
    return float(pipe.encode_image_latents(torch.from_numpy(clips).permute(0, 3, 1, 2).float() / 127.5 - 1).std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/alss-ablation", help="an alss_ablation.py output: videos, held-out")
    parser.add_argument("--model", action="append", help="trained pipeline folder (repeat to compare)")
    parser.add_argument("--seeds", type=int, default=4, help="sampling seeds per held-out picture")
    parser.add_argument("--roll", type=int, default=5, help="frames to roll the initial noise by")
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--fast", action="store_true", help="a tiny random model: only checks that everything runs")
    args = parser.parse_args()
    quiet_libraries()
    run = Path(args.run)
    if args.fast:
        write_videos(run / "videos", 2, 0, video)
        write_videos(run / "held-out", 1, 1_000_000, video)
        if not (run / "fast-model").exists():
            LoopAnimatePipeline(**tiny_components()).save_pretrained(run / "fast-model")
        args.model, args.seeds, args.sample_steps = [str(run / "fast-model")], 2, 2
    pictures = first_frames(sorted((run / "held-out").glob("*.mp4")))
    results = {}
    for model in args.model:
        pipe = load_pipeline(model)
        threshold = noise_threshold(pipe, data_clips(run / "videos", FRAMES, 16))
        results[model] = {
            "threshold": threshold,
            "latent_std": latent_scale(pipe, run / "videos"),
            **seed_or_position(pipe, pictures, args.seeds, args.roll, threshold, args.sample_steps),
            "training_batch": training_batch(pipe, run / "videos"),
        }
        print(
            json.dumps({key: value for key, value in results[model].items() if key not in ("training_batch", "flags")})
        )
        for row in results[model]["training_batch"]:
            print("  " + " ".join(f"{key}={value:.3g}" for key, value in row.items()))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
