"""Loop-safe frame interpolation: K in-between frames for every pair, the last -> first pair included (OpenCV DIS
optical flow, no weights), so a loop plays smoothly at K + 1 times the frame rate without a seam."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from loopanimate.frames import Frames, LazyFrames


def _flow(source: np.ndarray, target: np.ndarray, estimator) -> np.ndarray:
    return estimator.calc(cv2.cvtColor(source, cv2.COLOR_RGB2GRAY), cv2.cvtColor(target, cv2.COLOR_RGB2GRAY), None)


def _warp(frame: np.ndarray, flow: np.ndarray, amount: float, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Sample `frame` a fraction `amount` back along `flow` (a pixel at p comes from p - amount * flow)."""
    grid_x, grid_y = grid
    map_x, map_y = grid_x - amount * flow[..., 0], grid_y - amount * flow[..., 1]
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def interpolate_loop(frames: Frames, factor: int, closed_loop: bool = True) -> Frames:
    """A loop with `factor` frames between each pair, wrapping around, each made when asked for (a lazy sequence).

    A closed loop (last frame = first) stays closed: the result ends on frame 0 again, and frame 0 is unchanged.
    """
    if factor < 1:
        return frames
    count = len(frames) - 1 if closed_loop else len(frames)  # the frames of one period
    height, width = frames[0].shape[:2]
    grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))  # once per loop
    local = threading.local()  # each rendering thread keeps its last pair's flows: frames come in order

    def pair(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if getattr(local, "index", None) != index:
            estimator = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            frame, following = np.asarray(frames[index]), np.asarray(frames[(index + 1) % count])
            flows = _flow(frame, following, estimator), _flow(following, frame, estimator)
            local.index, local.pair = index, (frame, following, *flows)
        return local.pair

    def render(position: int) -> np.ndarray:
        index, step = divmod(position, factor + 1)
        if step == 0:
            return np.asarray(frames[index % count])
        frame, following, forward, backward = pair(index)
        t = step / (factor + 1)
        # Meet in the middle: each end moved t (or 1 - t) of the way along its flow, blended by nearness.
        early = _warp(frame, backward, t, grid).astype(np.float32)
        late = _warp(following, forward, 1 - t, grid).astype(np.float32)
        return np.clip((1 - t) * early + t * late, 0, 255).round().astype(np.uint8)

    total = count * (factor + 1) + (1 if closed_loop else 0)
    return LazyFrames(total, render, (height, width, 3))
