"""`data preview`: the clips ALSS draws from a few videos, side by side, each frame labelled with its source index."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import PIL.Image
import PIL.ImageDraw

from loopanimate.data.dataset import SkippedVideo, load_clip
from loopanimate.data.manifest import ManifestEntry


def preview_clips(
    entries: Iterable[ManifestEntry],
    num_videos: int,
    num_frames: int,
    size: tuple[int, int] = (128, 128),
    mode: str = "alss",
    seed: int = 0,
    max_stride: int = 4,
) -> np.ndarray:
    """(F, H, W * n, 3) uint8: the first `num_videos` videos that give a clip, one column each."""
    columns = []
    for index, entry in enumerate(entries):
        if len(columns) == num_videos:
            break
        try:
            frames, indices = load_clip(
                entry, num_frames, size, mode, np.random.default_rng([seed, 0, index, 0]), max_stride
            )
        except SkippedVideo:
            continue
        columns.append(
            np.stack(
                [
                    _label(frame, f"{position}: {source}")
                    for position, (frame, source) in enumerate(zip(frames, indices, strict=True))
                ]
            )
        )
    if not columns:
        raise ValueError("no video in the manifest gives a clip: run `loopanimate data check` to see why")
    return np.concatenate(columns, axis=2)


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    image = PIL.Image.fromarray(frame)
    draw = PIL.ImageDraw.Draw(image)
    draw.rectangle((0, 0, 6 * len(text) + 4, 12), fill="black")
    draw.text((2, 1), text, fill="white")
    return np.asarray(image)
