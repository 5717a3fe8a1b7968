"""Does ALSS teach loops? Three tiny models from one initialisation, trained on the same non-periodic videos with
ALSS, palindrome or plain clips, then scored on pictures they never saw (paper §4, at small scale, on a CPU).

Steps (all written under --out):
  1. synthetic videos of non-periodic motion (a pan over a texture, squares drifting in straight lines), 64x64;
  2. the tiny VAE trained briefly on their frames, so pixel-space metrics mean something (PSNR and a picture of
     reconstructions are reported);
  3. three runs of `loopanimate.training.train`, identical but for `sampling`, training the whole tiny UNet (there are
     no pretrained weights at this scale);
  4. 15-frame clips for held-out first frames from each model and from the untrained one, scored with
     `loopanimate.evaluation` (weight-free embeddings) plus mirror correlation (back-and-forth motion).

    python bench/alss_ablation.py [--videos 300] [--steps 1500] [--out runs/alss-ablation]
    python bench/alss_ablation.py --fast      # a few seconds: checks the script, measures nothing
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.data.alss import MODES
from loopanimate.data.synthetic import drifting_sprites, write_mp4
from loopanimate.data.video import read_frames
from loopanimate.evaluation import WeightFreeEmbedding, loop_consistency, motion, mse_f0, seam_ratio
from loopanimate.evaluation.metrics import mirror_correlation
from loopanimate.export import to_uint8, write_video
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.pipelines.tiny import tiny_components
from loopanimate.training.config import TrainConfig
from loopanimate.training.trainer import train

COLUMNS = (("seam", 2), ("loop_c", 3), ("motion", 2), ("mse_f0", 4), ("mirror", 2))
SIDE, FRAMES, VIDEO_FRAMES = 64, 15, 72


def make_videos(folder: Path, count: int, first_seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = folder / f"v{first_seed + number:05d}.mp4"
        if not path.is_file():
            write_mp4(path, drifting_sprites(VIDEO_FRAMES, (SIDE, SIDE), seed=first_seed + number))
            path.with_suffix(".txt").write_text("squares drift over a moving texture")
        paths.append(path)
    return paths


def frame_batches(paths: list[Path], batch: int, rng: np.random.Generator):
    """Random single frames of random videos, (B, 3, 64, 64) in [-1, 1]."""
    while True:
        frames = [
            read_frames(paths[rng.integers(len(paths))], np.array([rng.integers(VIDEO_FRAMES)]))[0]
            for _ in range(batch)
        ]
        yield torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1


def train_vae(pipe: LoopAnimatePipeline, paths: list[Path], held_out: list[Path], steps: int, out: Path) -> float:
    """Teach the tiny VAE these pictures (MSE + a little KL). Returns held-out PSNR in dB; saves reconstructions."""
    vae = pipe.vae.train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=2e-3)
    batches = frame_batches(paths, 16, np.random.default_rng(0))
    for _ in range(steps):
        pixels = next(batches)
        posterior = vae.encode(pixels).latent_dist
        loss = (
            torch.nn.functional.mse_loss(vae.decode(posterior.sample()).sample, pixels) + 1e-6 * posterior.kl().mean()
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    vae.eval()
    with torch.no_grad():
        pixels = torch.cat([next(frame_batches(held_out, 4, np.random.default_rng(1)))])
        restored = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
    mse = float(((restored - pixels) / 2).pow(2).mean())
    pair = torch.cat([pixels, restored], dim=3)  # originals left, reconstructions right
    rows = ((pair.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    contact_sheet(rows, columns=2, thumb_width=256).save(out / "vae-reconstructions.png")
    return 10 * np.log10(1 / mse)


def score(pipe: LoopAnimatePipeline, pictures: list[np.ndarray], folder: Path, steps: int) -> dict:
    """Mean metrics over one clip per held-out picture; the clips are written as GIFs with their inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    embed, rows = WeightFreeEmbedding(), []
    for number, picture in enumerate(pictures):
        frames = pipe(
            PIL.Image.fromarray(picture),
            "squares drift over a moving texture",
            num_frames=FRAMES,
            num_inference_steps=steps,
            guidance_scale_text=1.0,
            height=SIDE,
            width=SIDE,
            generator=torch.Generator().manual_seed(number),
            output_type="np",
            loop_closure="none",  # the loop must come from training alone
        ).frames[0]
        write_video(frames, folder / f"clip{number}", closed_loop=False)
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        image = torch.from_numpy(picture).permute(2, 0, 1).float() / 255
        rows.append(
            {
                "seam": seam_ratio(video),
                "loop_c": loop_consistency(video, embed),
                "motion": motion(video),
                "mse_f0": mse_f0(video, image),
                "mirror": mirror_correlation(video),
                "frames": to_uint8(frames),
            }
        )
    keys = ("seam", "loop_c", "motion", "mse_f0", "mirror")
    mean = {
        key: float(np.mean([r[key] for r in rows if r[key] is not None]))
        if any(r[key] is not None for r in rows)
        else None
        for key in keys
    }
    mean["sheet"] = rows[0]["frames"]
    return mean


def reference_rows(folder: Path, clips: int) -> dict[str, dict]:
    """The metrics on training clips themselves (decoded, no model) for each sampling mode: what each measure reads
    when the motion is coherent, so a model's numbers can be read against them."""
    from loopanimate.data.dataset import LoopClipDataset
    from loopanimate.data.manifest import read_manifest

    embed, rows = WeightFreeEmbedding(), {}
    entries = read_manifest(folder)[:clips]
    for mode in MODES:
        dataset = LoopClipDataset(entries, FRAMES, (SIDE, SIDE), mode=mode, seed=0)
        videos = [(dataset[i]["pixel_values"] + 1) / 2 for i in range(len(dataset))]
        values = {
            "seam": [seam_ratio(v) for v in videos],
            "loop_c": [loop_consistency(v, embed) for v in videos],
            "motion": [motion(v) for v in videos],
            "mse_f0": [0.0],
            "mirror": [mirror_correlation(v) for v in videos],
        }
        rows[f"data: {mode} clips"] = {
            key: float(np.mean([x for x in xs if x is not None])) for key, xs in values.items()
        }
    return rows


def _cell(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=300, help="training videos")
    parser.add_argument("--held-out", type=int, default=8, help="held-out pictures to animate")
    parser.add_argument("--steps", type=int, default=1500, help="UNet training steps per model")
    parser.add_argument("--vae-steps", type=int, default=1000)
    parser.add_argument("--sample-steps", type=int, default=25, help="denoising steps when generating")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/alss-ablation")
    parser.add_argument("--fast", action="store_true", help="tiny sizes: only checks that everything runs")
    parser.add_argument("--reference-only", action="store_true", help="only the metrics of the training clips")
    args = parser.parse_args()
    quiet_libraries()
    if args.fast:
        args.videos, args.held_out, args.steps, args.vae_steps, args.sample_steps = 6, 1, 2, 2, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    train_paths = make_videos(out / "videos", args.videos, first_seed=0)
    held_paths = make_videos(out / "held-out", args.held_out, first_seed=1_000_000)
    pictures = [read_frames(path, np.array([0]))[0] for path in held_paths]

    references = reference_rows(out / "videos", clips=args.held_out)
    if args.reference_only:
        for name, r in references.items():
            print(f"| {name} | " + " | ".join(_cell(r[key], digits) for key, digits in COLUMNS) + " |")
        return

    base = out / "base-model"
    pipe = LoopAnimatePipeline(**tiny_components(seed=args.seed))
    psnr = train_vae(pipe, train_paths, held_paths, args.vae_steps, out)
    pipe.save_pretrained(base)
    elapsed = time.perf_counter() - started
    print(f"VAE: {args.vae_steps} steps, held-out reconstruction PSNR {psnr:.1f} dB ({elapsed:.0f} s)")

    results = {"untrained": score(load_pipeline(base), pictures, out / "clips" / "untrained", args.sample_steps)}
    for mode in MODES:
        config = TrainConfig(
            model=str(base),
            data=str(out / "videos"),
            output=str(out / f"train-{mode}"),
            num_frames=FRAMES,
            trainable=[r"."],
            resolution=SIDE,
            sampling=mode,
            batch_size=4,
            num_workers=1,
            learning_rate=5e-4,
            lr_warmup_steps=min(50, args.steps),
            max_steps=args.steps,
            checkpoint_every=args.steps,
            keep_checkpoints=1,
            log_every=max(1, args.steps // 10),
            image_dropout=0.1,
            text_dropout=0.0,
            seed=args.seed,
        )
        config.check()
        final = train(config)
        results[mode] = score(load_pipeline(final), pictures, out / "clips" / mode, args.sample_steps)
        print(f"{mode}: trained {args.steps} steps ({time.perf_counter() - started:.0f} s)")

    lines = [
        "| model | Seam≈1 | Loop-C↑ | Motion | MSE-F0↓ | mirror corr. |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(_cell(r[key], digits) for key, digits in COLUMNS) + " |")
        contact_sheet(r.pop("sheet"), columns=FRAMES, thumb_width=64).save(out / f"sheet-{name}.png")
    for name, r in references.items():
        lines.append(f"| {name} | " + " | ".join(_cell(r[key], digits) for key, digits in COLUMNS) + " |")
    table = "\n".join(lines)
    summary = {
        "videos": args.videos,
        "held_out": args.held_out,
        "steps": args.steps,
        "vae_steps": args.vae_steps,
        "vae_psnr_db": psnr,
        "seed": args.seed,
        "seconds": time.perf_counter() - started,
        "results": results,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "table.md").write_text(table + "\n")
    print(table)
    print(f"total {time.perf_counter() - started:.0f} s; wrote {out / 'table.md'}, {out / 'results.json'}, sheets")


if __name__ == "__main__":
    main()
