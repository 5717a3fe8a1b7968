"""Synthetic training videos with non-periodic motion (a pan over a texture, drifting squares), written with PyAV.

For benchmarks and small-scale experiments: nothing in them loops, so a model that loops learned it from the sampling.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import av
import cv2
import numpy as np

from loopanimate.errors import InvalidArgumentError

MAX_VIDEO_SIDE = 4096  # H.264 levels stop at 4096 wide; a training video is rarely above 1080p


def check_video_size(size: tuple[int, int]) -> tuple[int, int]:
    """`size` (height, width) if H.264 in yuv420p can encode it: even sides (colour is stored at half size)."""
    height, width = size
    if not all(8 <= side <= MAX_VIDEO_SIDE and side % 2 == 0 for side in size):
        raise InvalidArgumentError(
            f"size {width}x{height} cannot be encoded as H.264: give even sides from 8 to {MAX_VIDEO_SIDE}, e.g. 128x96"
        )
    return size


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


# Captioned motion (experiments/mitdf_ablation.py): the picture shows where the square is, only the caption says
# where it goes. Each motion is a (dy, dx) direction in pixels per frame, or None for a turn about the square's centre.
MOTIONS: dict[str, tuple[float, float] | None] = {
    "left": (0.0, -1.0),
    "right": (0.0, 1.0),
    "up": (-1.0, 0.0),
    "down": (1.0, 0.0),
    "spins": None,
}
DISTRACTORS = ("a", "bright", "small", "calm", "photo", "of", "the", "scene", "today", "soft", "light", "still")


def motion_caption(motion: str, rng: np.random.Generator) -> str:
    """'... the square moves left ...' or '... the square spins ...', between one to three distractor words a side."""
    verb = motion if MOTIONS[motion] is None else f"moves {motion}"
    before, after = (" ".join(rng.choice(DISTRACTORS, size=rng.integers(1, 4))) for _ in range(2))
    return f"{before} the square {verb} {after}"


def moving_square(
    motion: str,
    num_frames: int,
    size: tuple[int, int],
    seed: int,
    speed: float = 0.7,
    turn: float = 4.0,
    flat_background: bool = False,
) -> Iterator[np.ndarray]:
    """Frames of a two-coloured square over a still, smooth random background, moving the way `motion` names:
    `speed` pixels per frame along MOTIONS[motion], or `turn` degrees per frame about its centre (half of it is
    another colour, so a turn shows). The square starts near the middle whatever the motion, so the first frame does
    not tell where it goes; keep `num_frames * speed` under a third of the side to stay in the frame. A flat
    background is one colour instead of a smooth field."""
    height, width = size
    rng = np.random.default_rng(seed)
    cells = (1, 1) if flat_background else (max(2, height // 16), max(2, width // 16))
    coarse = rng.uniform(40, 215, size=(*cells, 3))
    background = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    side = min(height, width) / 4
    colours = rng.uniform(0, 255, size=(2, 3))
    centre = np.array([height, width]) / 2 + rng.uniform(-side / 4, side / 4, size=2)  # (y, x)
    direction = MOTIONS[motion]
    corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]], dtype=np.float64) * side / 2  # (x, y) about the centre
    half = np.array([[-1, -1], [-1, 0], [1, 0], [1, -1]], dtype=np.float64) * side / 2
    for index in range(num_frames):
        angle = np.deg2rad(turn * index) if direction is None else 0.0
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        at = centre + (0 if direction is None else np.array(direction) * speed * index)
        frame = background.copy()
        for shape, colour in ((corners, colours[0]), (half, colours[1])):
            points = shape @ rotation.T + at[::-1]  # (x, y) pixels
            cv2.fillConvexPoly(frame, np.round(points * 16).astype(np.int32), colour.tolist(), cv2.LINE_AA, shift=4)
        yield np.clip(frame, 0, 255).astype(np.uint8)
