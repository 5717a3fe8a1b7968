"""Scoring a set of videos and writing the paper-style report: JSON, CSV, a Markdown table and a similarity plot."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from loopanimate.atomic import atomic_file
from loopanimate.errors import InvalidArgumentError, LoopAnimateError
from loopanimate.evaluation import metrics
from loopanimate.evaluation.embeddings import RememberLast
from loopanimate.evaluation.metrics import Embed
from loopanimate.export import read_video
from loopanimate.jsonl import TEXT, iter_jsonl
from loopanimate.reader import read_picture

VIDEO_SUFFIXES = (".gif", ".mp4", ".webp", ".mov", ".mkv", ".webm", ".avi")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# The paper's column order, then ours: (heading, key, decimals).
COLUMNS = (
    ("CLIP-I↑", "clip_i", 3),
    ("MSE-F0↓", "mse_f0", 4),
    ("FC↑", "fc", 3),
    ("Motion", "motion", 2),
    ("Loop-C↑", "loop_c", 3),
    ("Seam≈1", "seam", 2),
)
# With a mask beside the video (`NAME.mask.png`, as `--save-mask` writes it): what a user sees as broken.
MASK_COLUMNS = (("BG change↓", "background_change", 2), ("Texture loss↓", "texture_loss", 3), ("Mask area", "area", 2))


@dataclass(frozen=True)
class VideoCase:
    """A video to score and the input image it was made from (None when unknown)."""

    video: Path
    image: Path | None
    mask: Path | None = None


def _image_beside(video: Path) -> Path | None:
    stem = video.with_suffix("") if video.is_file() else video
    return next((stem.with_suffix(s) for s in IMAGE_SUFFIXES if stem.with_suffix(s).is_file()), None)


def _mask_beside(video: Path) -> Path | None:
    mask = (video.with_suffix("") if video.is_file() else video).with_suffix(".mask.png")
    return mask if mask.is_file() else None


def columns(rows: list[dict]) -> tuple[tuple[str, str, int], ...]:
    """The paper's columns, and the mask measures when any video has its mask."""
    return COLUMNS + MASK_COLUMNS if any(row.get("area") is not None for row in rows) else COLUMNS


def find_cases(source: str | os.PathLike) -> list[VideoCase]:
    """Videos in a folder (files, or sub-folders of PNG frames), each with the same-stem image beside it;
    or the pairs a JSONL manifest names ({"video": ..., "image": ...}, paths relative to the manifest)."""
    source = Path(source)
    if source.is_file() and source.suffix == ".jsonl":
        cases = []
        for entry in iter_jsonl(source, "video", '{"video": PATH, "image": PATH}', {"image": TEXT}):
            image = source.parent / entry["image"] if entry.get("image") else None
            cases.append(VideoCase(source.parent / entry["video"], image))
        return cases
    if not source.is_dir():
        raise InvalidArgumentError(f"nothing to evaluate at {source}: give a folder of videos or a .jsonl manifest")
    cases = []
    for entry in sorted(source.iterdir()):
        is_video_file = entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES
        is_frame_folder = entry.is_dir() and any(entry.glob("*.png"))
        if is_video_file or is_frame_folder:
            cases.append(VideoCase(entry, _image_beside(entry), _mask_beside(entry)))
    return cases


def video_tensor(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, H, W) float in [0, 1]."""
    return (
        torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float() / 255.0
    )  # a copy: decoders' arrays are read-only


def score(case: VideoCase, embed: Embed) -> dict:
    """One report row: every metric that the inputs allow; an unreadable video gives a row with its error."""
    row: dict = {"video": str(case.video), "image": str(case.image) if case.image else None, "error": None}
    row.update({key: None for _, key, _ in COLUMNS + MASK_COLUMNS})
    try:
        video = video_tensor(read_video(case.video)[0])
    except LoopAnimateError as error:
        row["error"] = str(error)
        return row
    embed = RememberLast(embed)  # FC, the similarity curve and CLIP-I all embed the whole video
    row["frames"] = len(video)
    if len(video) < 2:
        row["error"] = "fewer than 2 frames: nothing to measure"
        return row
    row.update(
        fc=metrics.frame_consistency(video, embed),
        motion=metrics.motion(video),
        loop_c=metrics.loop_consistency(video, embed),
        seam=metrics.seam_ratio(video),
        closed_loop=metrics.is_closed_loop(video),
        similarity_to_first=metrics.similarity_to_first(video, embed),
    )
    if case.image is not None:
        try:
            image = video_tensor(np.asarray(read_picture(case.image))[None])[0]
            row.update(clip_i=metrics.clip_i(video, image, embed), mse_f0=metrics.mse_f0(video, image))
            if case.mask is not None:
                row.update(mask_scores(video, image, case.mask))
        except LoopAnimateError as error:
            row["error"] = str(error)
    return row


def mask_scores(video: torch.Tensor, image: torch.Tensor, mask_path: Path) -> dict:
    """Background change, texture loss and the mask's area, with the photo and the mask at the video's size."""
    import cv2

    from loopanimate.evaluation.region_metrics import background_change, mask_sanity, texture_loss
    from loopanimate.reader import read_mask

    frames = (video.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)  # (F, H, W, 3)
    size = (frames.shape[2], frames.shape[1])
    photo = cv2.resize(
        (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), size, interpolation=cv2.INTER_AREA
    )
    mask = cv2.resize(np.asarray(read_mask(mask_path), np.float32) / 255.0, size, interpolation=cv2.INTER_LINEAR)
    return {
        "background_change": background_change(frames, photo, mask),
        "texture_loss": texture_loss(frames, photo),
        "area": mask_sanity(mask)["area"],
    }


def mean_row(rows: list[dict]) -> dict:
    """The mean of each column over the videos that have it."""
    mean = {"video": "mean"}
    for _, key, _ in COLUMNS + MASK_COLUMNS:
        values = [row[key] for row in rows if row[key] is not None]
        mean[key] = float(np.mean(values)) if values else None
    return mean


def _cell(value: float | None, decimals: int) -> str:
    return "n/a" if value is None else f"{value:.{decimals}f}"


def number_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table: the first column names a row (left-aligned), the others are numbers (right-aligned)."""
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def markdown_table(rows: list[dict], backend: str) -> str:
    shown = columns(rows)
    lines = [
        "| video | " + " | ".join(heading for heading, _, _ in shown) + " |",
        "| --- |" + " ---: |" * len(shown),
    ]
    for row in [*rows, mean_row(rows)]:
        name = row["video"] if row["video"] == "mean" else Path(row["video"]).name
        cells = [_cell(row[key], decimals) for _, key, decimals in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = [
        f"Embeddings: {backend}. MSE-F0 on the [0, 1] scale. Motion: mean DIS optical flow, pixels per frame with "
        f"the long side at {metrics.MOTION_SIDE}. Seam: the looping player's last step over the median step "
        "(n/a: no motion).",
    ]
    if shown != COLUMNS:
        notes.append(
            "BG change: grey levels outside the mask grown by 4 px (goal 0); texture loss: share of changed pixels "
            "whose 5x5 detail fell below half the photo's (goal <= 0.01); from NAME.mask.png beside the video."
        )
    notes += [f"- {Path(row['video']).name}: {row['error']}" for row in rows if row["error"]]
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


REPORT_FILES = ("report.json", "report.csv", "report.md", "similarity.png")


def check_report_folder(out_dir: str | os.PathLike) -> None:
    """A report folder we may write: new, empty, or an earlier report of ours (its report.json has our keys) holding
    nothing but our files; never a user's notes that happen to be called report.md."""
    from loopanimate.atomic import check_owned_folder

    folder = Path(out_dir)
    check_owned_folder(folder, lambda entry: entry.name in REPORT_FILES and entry.is_file(), "report folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    from loopanimate.reader import read_text

    try:
        ours = set(json.loads(read_text(folder / "report.json", "report"))) >= {"backend", "columns", "rows", "mean"}
    except (InvalidArgumentError, ValueError, TypeError):  # missing, unreadable, not JSON, not an object
        ours = False
    if not ours:
        raise InvalidArgumentError(
            f"report folder {folder} holds files that are not an earlier report of ours: nothing was replaced; choose "
            "a new folder"
        )


def write_report(rows: list[dict], out_dir: str | os.PathLike, backend: str) -> dict[str, Path]:
    """Write report.json, report.csv, report.md and similarity.png into `out_dir` (each replaced only when complete)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in REPORT_FILES}
    summary = {
        "backend": backend,
        "columns": [heading for heading, _, _ in columns(rows)],
        "rows": rows,
        "mean": mean_row(rows),
    }
    with atomic_file(paths["report.json"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    with atomic_file(paths["report.csv"]) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        shown = columns(rows)
        writer.writerow(["video", *(heading for heading, _, _ in shown), "error"])
        for row in [*rows, mean_row(rows)]:
            writer.writerow([row["video"], *(row[key] for _, key, _ in shown), row.get("error")])
    with atomic_file(paths["report.md"]) as tmp:
        tmp.write_text(markdown_table(rows, backend))
    with atomic_file(paths["similarity.png"]) as tmp:
        plot_similarity(rows, backend, tmp)
    return paths


def plot_similarity(rows: list[dict], backend: str, path: Path) -> None:
    """One line per video: each frame's similarity to frame 0. A loop returns towards 1 at its end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for row in rows:
        if row.get("similarity_to_first"):
            axes.plot(row["similarity_to_first"], marker=".", label=Path(row["video"]).name)
    axes.set_xlabel("frame")
    axes.set_ylabel("cosine similarity to frame 0")
    axes.set_title(f"Similarity to the first frame ({backend})", fontsize=10)
    axes.grid(alpha=0.3)
    if len(rows) <= 12:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
