"""PIA's own loop presets against our `cycle` closure, on the same tiny trained PIA-layout model (issue 24, item 3).

1. Videos and a VAE that knows their frames: `small_scale.py`'s drifting sprites and VAE training.
2. A tiny UNet in PIA's layout (conv_in reads noisy, mask, image; the image latent on every frame; `text` routing),
   trained from scratch on plain 16-frame clips with PIA's objective: the mask channel holds each frame's affinity to
   frame 0. PIA computes its affinity from frame statistics; the stand-in here is 1 - 0.5 * d_i / max_j d_j, with d_i
   the mean absolute pixel difference of frame i to frame 0, so it spans PIA's presets' range (1 down to 0.5).
3. For every held-out picture, seed and loop preset (motion_scale 3, 4, 5): PIA's loop (`loop_closure="none"`, 16
   frames, all shown) against ours (`cycle`, 17 frames whose last repeats the first: 16 shown), same weights, noise and
   affinity table. Scores: seam ratio (about 1 is invisible), Loop-C (last frame against the first), Loop-C of the
   last frame a player shows, Motion.

    python experiments/pia_loops.py [--videos 96] [--steps 400] [--seeds 3] [--out runs/pia-loops]
    python experiments/pia_loops.py --fast      # seconds: checks the script, measures nothing
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from small_scale import (  # experiments/small_scale.py: the script's folder is on the path
    SIDE,
    data_clips,
    experiment_parser,
    first_frames,
    trained_vae_model,
    write_results,
    write_videos,
)

from loopanimate.data.synthetic import drifting_sprites
from loopanimate.evaluation import WeightFreeEmbedding, loop_consistency, motion, seam_ratio
from loopanimate.evaluation.pixel_metrics import is_closed_loop
from loopanimate.evaluation.report import number_table
from loopanimate.models import LoopAnimateUNet
from loopanimate.models.conditioning import PIA_CONDITIONING
from loopanimate.models.latents import encode_latents
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline

FRAMES = PIA_CONDITIONING.trained_frames  # 16: PIA's clip length, and the loops' shown frames
PROMPT = "squares drift over a moving texture"
LOOP_PRESETS = (3, 4, 5)  # PIA's small, moderate and large loop
COLUMNS = (("seam", 2), ("loop_c", 3), ("loop_c_shown", 3), ("motion", 2))  # score, decimals
MODES = {"PIA loop preset (none)": ("none", FRAMES), "cycle (ours)": ("cycle", FRAMES + 1)}


def video(seed: int):
    return drifting_sprites(48, (SIDE, SIDE), seed=seed), PROMPT


def pia_unet(base: LoopAnimatePipeline) -> LoopAnimateUNet:
    """The base model's tiny UNet architecture in PIA's layout, freshly initialised."""
    config = {**base.unet.config, "conditioning": PIA_CONDITIONING.to_config(), "context_routing": "text"}
    return LoopAnimateUNet.from_config({key: value for key, value in config.items() if not key.startswith("_")})


def clip_affinity(clip: torch.Tensor) -> torch.Tensor:
    """Per frame of (F, 3, H, W): 1 - 0.5 * d_i / max d, d_i the mean absolute difference to frame 0 (1 if still)."""
    distance = (clip - clip[:1]).abs().mean(dim=(1, 2, 3))  # (F,)
    return 1 - 0.5 * distance / distance.max().clamp_min(1e-8)


def train_pia(base_dir: Path, videos: Path, clips: int, steps: int, out: Path) -> tuple[Path, float]:
    """A PIA-layout pipeline trained `steps` AdamW steps (batch 4, whole UNet) on `clips` plain clips; reused if made.
    Returns its folder and the training seconds."""
    folder, record = out / "pia-model", out / "pia-training.json"
    if record.is_file():
        return folder, json.loads(record.read_text())["seconds"]
    torch.manual_seed(0)
    base = load_pipeline(base_dir)
    unet = pia_unet(base).train()
    clips_uint8 = data_clips(videos, FRAMES, clips, mode="plain")  # (F, H, W, 3) each
    pixels = torch.stack([torch.from_numpy(c).permute(0, 3, 1, 2).float() / 127.5 - 1 for c in clips_uint8])
    with torch.no_grad():
        latents = torch.stack([encode_latents(base.vae, clip) for clip in pixels]).transpose(1, 2)  # (N, 4, F, h, w)
        text = base.encode_text([PROMPT, ""])  # (2, 77, D): the caption, and the empty prompt for guidance
    affinity = torch.stack([clip_affinity(clip) for clip in pixels])  # (N, F)
    scheduler = DDPMScheduler.from_config(base.scheduler.config)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=5e-4)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for step in range(steps):
        chosen = torch.randint(len(latents), (4,), generator=generator)
        clean, mask = latents[chosen], affinity[chosen][:, None, :, None, None].expand(-1, 1, -1, *latents.shape[3:])
        image = clean[:, :, :1].expand_as(clean)  # PIA: frame 0's latent on every frame
        parts = {"image": image, "mask": mask}
        condition = torch.cat([parts[name] for name in PIA_CONDITIONING.channel_order[1:]], dim=1)  # (B, 5, F, h, w)
        noise = torch.randn(clean.shape, generator=generator)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (len(chosen),), generator=generator)
        prompts = text[(torch.rand(len(chosen), generator=generator) < 0.1).long()]  # 10% empty: for guidance
        noisy = torch.cat([scheduler.add_noise(clean, noise, timesteps), condition], dim=1)
        loss = F.mse_loss(unet(noisy, timesteps, prompts[:, :0], prompts).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps}: loss {loss.item():.4f}", flush=True)
    seconds = time.perf_counter() - started
    components = {name: getattr(base, name) for name in ("vae", "text_encoder", "tokenizer", "scheduler")}
    LoopAnimatePipeline(unet=unet.eval(), image_encoder=None, feature_extractor=None, **components).save_pretrained(
        folder
    )
    record.write_text(json.dumps({"steps": steps, "clips": clips, "seconds": seconds, "last_loss": loss.item()}))
    return folder, seconds


def scores(frames: np.ndarray, embed: WeightFreeEmbedding) -> dict[str, float | None]:
    """The table's measures of one loop (F, H, W, 3) in [0, 1]."""
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    shown = clip[:-1] if is_closed_loop(clip) else clip  # a player does not show a repeated first frame
    return {
        "seam": seam_ratio(clip),
        "loop_c": loop_consistency(clip, embed),
        "loop_c_shown": loop_consistency(shown, embed),
        "motion": motion(clip),
    }


def mean(values: list[float | None]) -> float:
    return statistics.mean(value for value in values if value is not None)


def main() -> None:
    parser = experiment_parser(__doc__, "runs/pia-loops", vae_steps=300)
    parser.add_argument("--steps", type=int, default=400, help="PIA-layout training steps")
    parser.add_argument("--seeds", type=int, default=3)
    parser.set_defaults(videos=96)  # one 16-frame training clip each
    args = parser.parse_args()
    if args.fast:
        args.videos, args.held_out, args.vae_steps, args.steps = 4, 1, 2, 2
        args.seeds, args.sample_steps = 1, 2
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_paths = write_videos(out / "videos", args.videos, 0, video)
    held_paths = write_videos(out / "held-out", args.held_out, 10_000, video)
    base, psnr = trained_vae_model(out, train_paths, held_paths, args.vae_steps)
    model, seconds = train_pia(base, out / "videos", args.videos, args.steps, out)
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    embed = WeightFreeEmbedding()
    results = []
    for number, picture in enumerate(first_frames(held_paths)):
        for seed in range(args.seeds):
            for scale in LOOP_PRESETS[:1] if args.fast else LOOP_PRESETS:
                for name, (closure, frames) in MODES.items():
                    loop = pipe(
                        PIL.Image.fromarray(picture),
                        PROMPT,
                        num_frames=frames,
                        num_inference_steps=args.sample_steps,
                        guidance_scale_text=7.5,  # PIA's default
                        height=SIDE,
                        width=SIDE,
                        generator=torch.Generator().manual_seed(seed),
                        output_type="np",
                        loop_closure=closure,
                        motion_scale=scale,
                    ).frames[0]
                    row = {"mode": name, "motion_scale": scale, "picture": number, "seed": seed}
                    results.append({**row, **scores(loop, embed)})
    rows = []
    for scale in sorted({r["motion_scale"] for r in results}):
        for name in MODES:
            mine = [r for r in results if r["mode"] == name and r["motion_scale"] == scale]
            cells = [f"{mean([r[key] for r in mine]):.{digits}f}" for key, digits in COLUMNS]
            rows.append([f"{name}, motion_scale {scale}", f"{len(mine)}", *cells])
    table = number_table(["loop", "loops", "Seam≈1", "Loop-C↑", "Loop-C shown↑", "Motion"], rows)
    summary = {"vae_psnr_db": psnr, "training_seconds": seconds, "settings": vars(args), "loops": results}
    write_results(out, table, summary)


if __name__ == "__main__":
    main()
