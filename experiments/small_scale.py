"""Steps shared by the small-scale learning experiments (alss_ablation.py, noisy_frames.py, mitdf_ablation.py,
curriculum.py): synthetic videos, a tiny model whose VAE knows their frames, one training run, sampling, and the
share of clean frames. Every step reuses what an earlier run of it left on disk, so a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from loopanimate.contact_sheet import contact_sheet
from loopanimate.data.synthetic import write_mp4
from loopanimate.data.video import probe, read_frames
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.pipelines.tiny import tiny_components
from loopanimate.training.config import TrainConfig
from loopanimate.training.trainer import train

SIDE = 64  # pixels a side: 8x8 latents
VideoMaker = Callable[[int], tuple[Iterable[np.ndarray], str]]  # seed -> (frames, caption)


def experiment_parser(doc: str, out: str, vae_steps: int) -> argparse.ArgumentParser:
    """The options every experiment here shares; each script adds its training steps and its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--videos", type=int, default=300, help="training videos")
    parser.add_argument("--held-out", type=int, default=8, help="held-out pictures to animate")
    parser.add_argument("--vae-steps", type=int, default=vae_steps)
    parser.add_argument("--sample-steps", type=int, default=25, help="denoising steps when generating")
    parser.add_argument("--out", default=out)
    parser.add_argument("--fast", action="store_true", help="tiny sizes: only checks that everything runs")
    return parser


def write_results(folder: Path, table: str, summary: dict) -> None:
    """An experiment's outcome: results.json (everything), table.md (the markdown table), and the table printed."""
    (folder / "results.json").write_text(json.dumps(summary, indent=2))
    (folder / "table.md").write_text(table + "\n")
    print(table)
    print(f"wrote {folder / 'table.md'}, {folder / 'results.json'} and contact sheets in {folder}")


def mean_scores(rows: list[dict]) -> dict:
    """Per measure, the mean over rows that have it (None where none has)."""
    values = {key: [row[key] for row in rows if row[key] is not None] for key in rows[0]}
    return {key: float(np.mean(xs)) if xs else None for key, xs in values.items()}


def seed_cell(values: list[float | None], digits: int) -> str:
    """Mean ± standard deviation over seeds; the mean alone for one seed; n/a for none."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def write_videos(folder: Path, count: int, first_seed: int, make: VideoMaker) -> list[Path]:
    """`count` MP4s with .txt captions, seeds from `first_seed`; videos already written are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(first_seed, first_seed + count):
        path = folder / f"v{seed:05d}.mp4"
        if not path.is_file():
            frames, caption = make(seed)
            write_mp4(path, frames)
            path.with_suffix(".txt").write_text(caption)
        paths.append(path)
    return paths


def first_frames(paths: list[Path]) -> list[np.ndarray]:
    return [read_frames(path, np.array([0]))[0] for path in paths]


def _frame_batches(paths: list[Path], batch: int, rng: np.random.Generator):
    """Random frames of random videos, (B, 3, H, W) in [-1, 1]: one of every sixth frame, eight at most a video."""
    while True:
        frames = []
        for _ in range(batch):
            path = paths[rng.integers(len(paths))]
            choices = np.arange(0, probe(path).frames, 6)[:8]
            frames.append(read_frames(path, choices[[rng.integers(len(choices))]])[0])
        yield torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1


def train_vae(pipe: LoopAnimatePipeline, paths: list[Path], held_out: list[Path], steps: int, out: Path) -> float:
    """Teach the tiny VAE these pictures (MSE + a little KL) and fit its scaling factor to them. Returns held-out PSNR
    in dB; saves reconstructions."""
    vae = pipe.vae.train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=2e-3)
    batches = _frame_batches(paths, 16, np.random.default_rng(0))
    for _ in range(steps):
        pixels = next(batches)
        posterior = vae.encode(pixels).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        loss = torch.nn.functional.mse_loss(reconstruction, pixels) + 1e-6 * posterior.kl().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    vae.eval()
    with torch.no_grad():
        # Stable Diffusion's rule: scale latents to unit variance, or the noise schedule drowns them (noisy_frames.py
        # measured 0.22 with SD's 0.18215 here, a signal-to-noise ratio 20x below the schedule's at every step).
        latents = torch.cat([vae.encode(next(batches)).latent_dist.mode() for _ in range(4)])
        vae.register_to_config(scaling_factor=float(1 / latents.std()))
        pixels = next(_frame_batches(held_out, 4, np.random.default_rng(1)))
        restored = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
    mse = float(((restored - pixels) / 2).pow(2).mean())
    pair = torch.cat([pixels, restored], dim=3)  # originals left, reconstructions right
    rows = ((pair.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    contact_sheet(rows, columns=2, thumb_width=256).save(out / "vae-reconstructions.png")
    return float(10 * np.log10(1 / mse))


def trained_vae_model(out: Path, train_paths: list[Path], held_paths: list[Path], vae_steps: int) -> tuple[Path, float]:
    """out/base-model: the tiny pipeline of seed 0 with its VAE taught the videos' frames (made once, then reused).
    Returns the folder and the VAE's held-out PSNR."""
    base, record = out / "base-model", out / "vae.json"
    if not record.is_file():
        pipe = LoopAnimatePipeline(**tiny_components(seed=0))
        psnr = train_vae(pipe, train_paths, held_paths, vae_steps, out)
        pipe.save_pretrained(base)
        record.write_text(json.dumps({"vae_steps": vae_steps, "psnr_db": psnr}))
    return base, json.loads(record.read_text())["psnr_db"]


def seeded_model(base: Path, seed: int, out: Path, **unet_config) -> Path:
    """The base model with everything but its VAE drawn anew from `seed` (UNet and the frozen random encoders, as
    `tiny_components(seed)` draws them; seed 0 is the base itself), and `unet_config` overriding the UNet's config."""
    folder = out / "".join([f"init-seed{seed}", *(f"-{key}-{value}" for key, value in sorted(unet_config.items()))])
    if not folder.is_dir():
        components = tiny_components(seed=seed)
        unet = components["unet"]
        components["unet"] = type(unet).from_config({**unet.config, **unet_config})
        components["unet"].load_state_dict(unet.state_dict())  # the same weights under another config
        components["unet"].eval()
        components["vae"] = load_pipeline(base).vae
        LoopAnimatePipeline(**components).save_pretrained(folder)
    return folder


def finished_steps(output: Path) -> int | None:
    """The step count of the run in `output` whose final model was saved, if any."""
    log = output / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    return next((record["step"] for record in reversed(records) if "final" in record), None)


def train_run(model: Path, data: Path, output: Path, steps: int, resume: bool = False, **settings) -> Path:
    """One `loopanimate.training.train` run of the tiny model (the whole UNet, AdamW 5e-4, batch 4, 15-frame ALSS clips
    unless `settings` say otherwise); a run finished at `steps` is reused, and with `resume` a shorter one goes on
    from its latest checkpoint."""
    final = output / "final"
    if finished_steps(output) == steps or (final.is_dir() and not resume):
        return final
    config = TrainConfig(
        model=str(model),
        data=str(data),
        output=str(output),
        **{
            "num_frames": 15,
            "trainable": [r"."],
            "resolution": SIDE,
            "batch_size": 4,
            "num_workers": 1,
            "learning_rate": 5e-4,
            "lr_warmup_steps": min(50, steps),
            "max_steps": steps,
            "checkpoint_every": steps,
            "keep_checkpoints": 1,
            "log_every": max(1, steps // 10),
            "image_dropout": 0.1,
            "text_dropout": 0.0,
            **settings,
        },
    )
    config.check()
    return train(config, resume="latest" if resume and (output / "checkpoints").is_dir() else None)


def sample_clip(
    pipe: LoopAnimatePipeline,
    picture: np.ndarray,
    prompt: str,
    num_frames: int,
    steps: int,
    seed: int,
    latents: torch.Tensor | None = None,
    loop_closure: str = "none",
) -> np.ndarray:
    """One clip (F, H, W, 3) in [0, 1] at the picture's size, without loop closure unless asked: in the learning
    experiments a loop must come from training alone."""
    return pipe(
        PIL.Image.fromarray(picture),
        prompt,
        num_frames=num_frames,
        num_inference_steps=steps,
        guidance_scale_text=1.0,
        height=picture.shape[0],
        width=picture.shape[1],
        generator=torch.Generator().manual_seed(seed),
        latents=latents,
        output_type="np",
        loop_closure=loop_closure,
    ).frames[0]


def data_clips(
    folder: Path, num_frames: int, count: int, mode: str = "alss", side: int = SIDE, max_stride: int = 4
) -> list[np.ndarray]:
    """The first `count` training clips of `folder` as the trainer samples them, (F, H, W, 3) uint8."""
    from loopanimate.data.dataset import LoopClipDataset
    from loopanimate.data.manifest import read_manifest

    dataset = LoopClipDataset(
        read_manifest(folder)[:count], num_frames, (side, side), mode=mode, max_stride=max_stride, seed=0
    )
    clips = [dataset[index]["pixel_values"] for index in range(len(dataset))]  # (F, 3, H, W) in [-1, 1]
    return [((clip.permute(0, 2, 3, 1) + 1) * 127.5).round().byte().numpy() for clip in clips]


def neighbour_distances(frames: np.ndarray) -> np.ndarray:
    """Per frame of (F, H, W, 3) in [0, 1]: the mean absolute difference to its nearer neighbour in time. Large only
    for a frame unlike both of its neighbours (a noise-like frame), not for one step of fast motion."""
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # (F - 1,)
    return np.minimum(np.r_[np.inf, steps], np.r_[steps, np.inf])


@torch.no_grad()
def reconstructed(pipe: LoopAnimatePipeline, frames: np.ndarray) -> np.ndarray:
    """Frames (F, H, W, 3) uint8 through the VAE and back, in [0, 1]: what a model's output can look like at best."""
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    latents = pipe.encode_image_latents(pixels)
    video = pipe.decode_latents(latents.permute(1, 0, 2, 3)[None], chunk_size=16)[0]  # (3, F, H, W)
    return ((video.permute(1, 2, 3, 0).clamp(-1, 1) + 1) / 2).numpy()


def noise_threshold(pipe: LoopAnimatePipeline, clips: list[np.ndarray]) -> float:
    """The largest neighbour distance of any frame of these data clips after the VAE: a generated frame further from
    both of its neighbours than the data ever is, is noise-like (an outlier among its clip's frames)."""
    return float(max(neighbour_distances(reconstructed(pipe, clip)).max() for clip in clips))


def clean_threshold(pipe: LoopAnimatePipeline, clips: list[np.ndarray]) -> float:
    """The 99th percentile of the neighbour distances of these data clips' frames after the VAE: how far a real frame
    may be from the nearest other one."""
    return float(np.percentile(np.concatenate([neighbour_distances(reconstructed(pipe, c)) for c in clips]), 99))


def nearest_frame_distances(clip: np.ndarray, video: np.ndarray) -> np.ndarray:
    """Per frame of `clip` (F, H, W, 3), the mean absolute difference to the nearest frame of `video` (T, H, W, 3)."""
    return np.array([np.abs(video - frame).mean(axis=(1, 2, 3)).min() for frame in clip])


def held_out_videos(pipe: LoopAnimatePipeline, paths: list[Path]) -> list[np.ndarray]:
    """Every frame of each held-out video through the VAE, (T, H, W, 3) in [0, 1]: what its picture may become."""
    return [reconstructed(pipe, read_frames(path, np.arange(probe(path).frames))) for path in paths]


def clean_frames(clip: np.ndarray, video: np.ndarray, threshold: float) -> np.ndarray:
    """A frame is clean when it is within `threshold` (clean_threshold) of some frame of its picture's own video: it
    shows that picture, moved as the data move, not noise and not another scene."""
    return nearest_frame_distances(clip, video) <= threshold
