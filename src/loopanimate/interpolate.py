"""Loop-safe frame interpolation: K in-between frames for every pair, the last -> first pair included (OpenCV DIS
optical flow, no weights), so a loop plays smoothly at K + 1 times the frame rate without a seam."""

from __future__ import annotations

import cv2
import numpy as np


def _flow(source: np.ndarray, target: np.ndarray, estimator) -> np.ndarray:
    return estimator.calc(cv2.cvtColor(source, cv2.COLOR_RGB2GRAY), cv2.cvtColor(target, cv2.COLOR_RGB2GRAY), None)


def _warp(frame: np.ndarray, flow: np.ndarray, amount: float, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Sample `frame` a fraction `amount` back along `flow` (a pixel at p comes from p - amount * flow)."""
    grid_x, grid_y = grid
    map_x, map_y = grid_x - amount * flow[..., 0], grid_y - amount * flow[..., 1]
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def interpolate_loop(frames: np.ndarray, factor: int, closed_loop: bool = True) -> np.ndarray:
    """(F, H, W, 3) uint8 -> a loop with `factor` frames between each pair, wrapping around.

    A closed loop (last frame = first) stays closed: the result ends on frame 0 again, and frame 0 is unchanged.
    """
    if factor < 1:
        return frames
    loop = frames[:-1] if closed_loop else frames
    estimator = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    height, width = loop.shape[1:3]
    grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))  # once per loop
    result = []
    for index, frame in enumerate(loop):
        following = loop[(index + 1) % len(loop)]
        forward, backward = _flow(frame, following, estimator), _flow(following, frame, estimator)
        result.append(frame)
        for step in range(1, factor + 1):
            t = step / (factor + 1)
            # Meet in the middle: each end moved t (or 1 - t) of the way along its flow, blended by nearness.
            early = _warp(frame, backward, t, grid).astype(np.float32)
            late = _warp(following, forward, 1 - t, grid).astype(np.float32)
            result.append(np.clip((1 - t) * early + t * late, 0, 255).round().astype(np.uint8))
    if closed_loop:
        result.append(loop[0])
    return np.stack(result)
