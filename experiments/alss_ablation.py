"""Does ALSS teach loops? Tiny models trained on the same non-periodic videos with ALSS, palindrome or plain clips,
for several seeds, then scored on pictures they never saw (paper §4, at small scale, on a CPU).

Steps (all written under --out; a rerun reuses what is there):
  1. synthetic videos of non-periodic motion (a pan over a texture, squares drifting in straight lines), 64x64;
  2. the tiny VAE trained briefly on their frames, its scaling factor fitted to them, so pixel-space metrics mean
     something (PSNR and a picture of reconstructions are reported);
  3. per seed (the UNet's initialisation and the data order), three runs of `loopanimate.training.train`, identical
     but for `sampling`, training the whole tiny UNet (there are no pretrained weights at this scale);
  4. 15-frame clips for held-out first frames from each model and from the untrained one, scored with
     `loopanimate.evaluation` (weight-free embeddings), mirror correlation (back-and-forth motion) and the share of
     clean frames (small_scale.clean_frames: near a frame of the picture's own video); means over seeds, +- their
     standard deviation.

    python experiments/alss_ablation.py [--videos 300] [--steps 500] [--seeds 3] [--out runs/alss-seeds]
    python experiments/alss_ablation.py --fast      # a few seconds: checks the script, measures nothing
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from small_scale import (  # experiments/small_scale.py: the script's folder is on the path
    SIDE,
    clean_frames,
    clean_threshold,
    data_clips,
    experiment_parser,
    first_frames,
    held_out_videos,
    mean_scores,
    sample_clip,
    seed_cell,
    seeded_model,
    train_run,
    trained_vae_model,
    write_results,
    write_videos,
)

from loopanimate.cli import quiet_libraries
from loopanimate.contact_sheet import contact_sheet
from loopanimate.data.alss import MODES
from loopanimate.data.synthetic import drifting_sprites
from loopanimate.evaluation import WeightFreeEmbedding, loop_consistency, motion, mse_f0, seam_ratio
from loopanimate.evaluation.metrics import mirror_correlation
from loopanimate.evaluation.report import number_table
from loopanimate.export import to_uint8, write_video
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline

COLUMNS = (("seam", 2), ("loop_c", 3), ("motion", 2), ("mse_f0", 4), ("mirror", 2), ("clean", 2))
FRAMES, VIDEO_FRAMES = 15, 72
PROMPT = "squares drift over a moving texture"


def video(seed: int):
    return drifting_sprites(VIDEO_FRAMES, (SIDE, SIDE), seed=seed), PROMPT


def clip_scores(
    frames: np.ndarray, picture: np.ndarray, own_video: np.ndarray | None, threshold: float, embed: WeightFreeEmbedding
) -> dict:
    """The table's measures of one clip (F, H, W, 3) in [0, 1]; `own_video`: its picture's held-out video, for the
    clean-frame share (None: not measured)."""
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    return {
        "seam": seam_ratio(clip),
        "loop_c": loop_consistency(clip, embed),
        "motion": motion(clip),
        "mse_f0": mse_f0(clip, torch.from_numpy(picture).permute(2, 0, 1).float() / 255),
        "mirror": mirror_correlation(clip),
        "clean": None if own_video is None else float(np.mean(clean_frames(frames, own_video, threshold))),
    }


def score(pipe: LoopAnimatePipeline, pictures: list[np.ndarray], videos: list[np.ndarray], folder: Path, steps: int,
          threshold: float):  # fmt: skip
    """Mean measures over one clip per held-out picture, and the first clip (for a sheet); clips are written as GIFs."""
    folder.mkdir(parents=True, exist_ok=True)
    embed, rows, clips = WeightFreeEmbedding(), [], []
    for number, (picture, own_video) in enumerate(zip(pictures, videos, strict=True)):
        frames = sample_clip(pipe, picture, PROMPT, FRAMES, steps, seed=number)
        write_video(frames, folder / f"clip{number}", closed_loop=False)
        rows.append(clip_scores(frames, picture, own_video, threshold, embed))
        clips.append(frames)
    return mean_scores(rows), clips


def reference_rows(folder: Path, clips: int, threshold: float) -> dict[str, dict]:
    """The measures on training clips themselves (decoded, no model) for each sampling mode: what each reads when the
    motion is coherent, so a model's numbers can be read against them."""
    embed, rows = WeightFreeEmbedding(), {}
    for mode in MODES:
        videos = [clip.astype(np.float32) / 255 for clip in data_clips(folder, FRAMES, clips, mode)]
        scores = [clip_scores(v, (v[0] * 255).round().astype(np.uint8), None, threshold, embed) for v in videos]
        rows[f"data: {mode} clips"] = {**mean_scores(scores), "mse_f0": None}
    return rows


def table(results: dict[str, list[dict]]) -> str:
    header = ["model", "Seam≈1", "Loop-C↑", "Motion", "MSE-F0↓", "mirror corr.", "clean frames↑"]
    rows = [[name, *(seed_cell([r[key] for r in per_seed], digits) for key, digits in COLUMNS)]
            for name, per_seed in results.items()]  # fmt: skip
    return number_table(header, rows)


def main() -> None:
    parser = experiment_parser(__doc__, out="runs/alss-seeds", vae_steps=1000)
    parser.add_argument("--steps", type=int, default=500, help="UNet training steps per model")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1: initialisation and data order")
    args = parser.parse_args()
    quiet_libraries()
    if args.fast:
        args.videos, args.held_out, args.steps, args.vae_steps, args.sample_steps, args.seeds = 6, 1, 2, 2, 2, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    train_paths = write_videos(out / "videos", args.videos, 0, video)
    held_paths = write_videos(out / "held-out", args.held_out, 1_000_000, video)
    pictures = first_frames(held_paths)
    base, psnr = trained_vae_model(out, train_paths, held_paths, args.vae_steps)
    base_pipe = load_pipeline(base)
    threshold = clean_threshold(base_pipe, data_clips(out / "videos", FRAMES, 16))
    videos = held_out_videos(base_pipe, held_paths)
    elapsed = time.perf_counter() - started
    print(f"VAE: held-out PSNR {psnr:.1f} dB; clean-frame threshold {threshold:.4f} ({elapsed:.0f} s)")

    results: dict[str, list[dict]] = {name: [] for name in ("untrained", *MODES)}
    first_clips: dict[str, list[np.ndarray]] = {name: [] for name in results}
    for seed in range(args.seeds):
        model = seeded_model(base, seed, out)
        runs = {"untrained": model}
        for mode in MODES:
            runs[mode] = train_run(
                model, out / "videos", out / f"train-{mode}-seed{seed}", args.steps, sampling=mode, seed=seed
            )
            print(f"seed {seed}, {mode}: trained {args.steps} steps ({time.perf_counter() - started:.0f} s)")
        for name, folder in runs.items():
            means, clips = score(load_pipeline(folder), pictures, videos, out / "clips" / f"{name}-seed{seed}",
                                 args.sample_steps, threshold)  # fmt: skip
            results[name].append(means)
            first_clips[name].append(clips[0])

    for name, clips in first_clips.items():  # one row per seed: the first held-out picture's clip
        contact_sheet(to_uint8(np.concatenate(clips)), columns=FRAMES, thumb_width=64).save(out / f"sheet-{name}.png")
    references = reference_rows(out / "videos", 16, threshold)
    text = table(results) + "\n" + "\n".join(table({name: [row]}).splitlines()[2] for name, row in references.items())
    summary = {
        "videos": args.videos,
        "held_out": args.held_out,
        "steps": args.steps,
        "seeds": args.seeds,
        "vae_psnr_db": psnr,
        "clean_threshold": threshold,
        "seconds": time.perf_counter() - started,
        "results": results,
        "references": references,
    }
    write_results(out, text, summary)


if __name__ == "__main__":
    main()
