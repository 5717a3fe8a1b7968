"""The metrics that need only pixels, no embedding: Motion (paper §6) and our seam ratio.

A video is (F, 3, H, W) in [0, 1], a numpy array or a CPU torch tensor alike: nothing here imports torch, so the
batch command can score every loop it makes without loading it.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

MOTION_SIDE = 256  # Motion is measured with the long side resized to this many pixels
CLOSED_LOOP_TOLERANCE = 0.004  # mean absolute difference under which the last frame "is" the first (about 1/255)


def _gray_at_motion_size(frame) -> np.ndarray:
    gray = (np.asarray(frame).transpose(1, 2, 0) * 255).round().astype(np.uint8)  # (H, W, 3)
    gray = cv2.cvtColor(gray, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = MOTION_SIDE / max(height, width)
    return cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def motion(video, region: np.ndarray | None = None) -> float:
    """Motion: mean optical-flow magnitude (OpenCV DIS) between consecutive frames, in pixels per frame with the long
    side at 256 pixels. 0 is a still picture. `region` (H, W) bool limits the mean to those pixels."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grays = [_gray_at_motion_size(frame) for frame in video]
    if region is not None:  # the region at the flow's size
        region = cv2.resize(region.astype(np.uint8), grays[0].shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
    magnitudes = [
        np.linalg.norm(flow.calc(prev, nxt, None), axis=-1) for prev, nxt in itertools.pairwise(grays)
    ]  # (h, w) each
    return float(np.mean([m.mean() if region is None else m[region].mean() for m in magnitudes]))


def frame_step(a, b) -> float:
    """How far apart two frames are: mean absolute difference on the [0, 1] scale."""
    return float(abs(a - b).mean())


def is_closed_loop(video) -> bool:
    """Whether the last frame repeats the first (a player would not show it)."""
    return frame_step(video[-1], video[0]) <= CLOSED_LOOP_TOLERANCE


def seam_ratio(video) -> float | None:
    """Seam (ours, after Video Textures' jump cost): the step a looping player shows from the last shown frame back to
    frame 0, divided by the median consecutive step. About 1: the seam is invisible; much more: a jump.

    A closed loop's last frame repeats frame 0 and is not shown, so its seam is second-to-last -> first.
    None when the video does not move (no step to compare with).
    """
    shown = video[:-1] if is_closed_loop(video) and len(video) > 2 else video
    steps = [frame_step(a, b) for a, b in itertools.pairwise(shown)]
    typical = float(np.median(steps)) if steps else 0.0
    if typical <= 1e-8:
        return None
    return frame_step(shown[-1], shown[0]) / typical


def loop_scores(frames) -> dict[str, float | None]:
    """Seam and Motion of uint8 frames (F, H, W, 3) (an array or a lazy sequence), as a face reports them beside a
    made loop. Each frame is shrunk to MOTION_SIDE first, so a 4K loop is scored in little memory."""
    from loopanimate.frames import prefetched

    small = []
    for frame in prefetched(frames):
        height, width = frame.shape[:2]
        scale = min(1.0, MOTION_SIDE / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale < 1 else frame)
    video = np.stack(small).transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (F, 3, h, w) in [0, 1]
    return {"seam": seam_ratio(video), "motion": motion(video)}
