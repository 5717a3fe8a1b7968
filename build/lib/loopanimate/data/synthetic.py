"""Synthetic training videos with non-periodic motion (a pan over a texture, drifting squares), written with PyAV.

For benchmarks and small-scale experiments: nothing in them loops, so a model that loops learned it from the sampling.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import av
import cv2
import numpy as np


def write_mp4(
    path: str | os.PathLike, frames: Iterable[np.ndarray], fps: int = 24, gop: int = 12, crf: int = 18
) -> None:
    """Encode (H, W, 3) uint8 frames as H.264 (yuv420p, a keyframe every `gop` frames)."""
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt, stream.gop_size, stream.options = "yuv420p", gop, {"crf": str(crf)}
        for frame in (first, *frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def drifting_sprites(num_frames: int, size: tuple[int, int], seed: int, sprites: int = 3) -> Iterator[np.ndarray]:
    """Frames of a camera panning over a smooth random texture while coloured squares drift in straight lines."""
    height, width = size
    rng = np.random.default_rng(seed)
    pan = rng.uniform(-1.5, 1.5, size=2)  # pixels per frame
    reach = int(np.ceil(np.abs(pan).max() * num_frames)) + 1
    coarse = rng.uniform(0, 255, size=(max(2, (height + 2 * reach) // 16), max(2, (width + 2 * reach) // 16), 3))
    texture = cv2.resize(
        coarse.astype(np.float32), (width + 2 * reach, height + 2 * reach), interpolation=cv2.INTER_CUBIC
    )
    starts = rng.uniform(0, 1, size=(sprites, 2)) * [height, width]
    velocities = rng.uniform(-2, 2, size=(sprites, 2))
    colours = rng.uniform(0, 255, size=(sprites, 3))
    side = max(4, min(height, width) // 8)
    for index in range(num_frames):
        y0, x0 = (reach + pan * index).round().astype(int)
        frame = texture[y0 : y0 + height, x0 : x0 + width].copy()
        for start, velocity, colour in zip(starts, velocities, colours, strict=True):
            y, x = (start + velocity * index).round().astype(int) % [height, width]
            frame[max(0, y - side // 2) : y + side // 2, max(0, x - side // 2) : x + side // 2] = colour
        yield np.clip(frame, 0, 255).astype(np.uint8)
