"""The background behind the object, invented with texture: what a spinning object uncovers (never a flat fill)."""

from __future__ import annotations

import cv2
import numpy as np

PLATE_SIDE = 160  # the smooth fill runs at this long side, then is upsampled: it is the costly step
DETAIL_SIGMA = 2.0  # pixels: detail finer than this blur is carried over from the mirrored surroundings


def smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The hole's colours inpainted (Telea) on a small copy and upsampled: right in colour, without detail."""
    height, width = hole.shape
    scale = min(1.0, PLATE_SIDE / max(height, width))
    small_size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small_hole = cv2.resize(hole, small_size, interpolation=cv2.INTER_NEAREST) | (
        cv2.resize(hole.astype(np.float32), small_size, interpolation=cv2.INTER_AREA) > 0
    ).astype(np.uint8)  # every small pixel that touches the hole
    small = cv2.inpaint(cv2.resize(image, small_size, interpolation=cv2.INTER_AREA), small_hole, 5, cv2.INPAINT_TELEA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def mirrored_detail(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """For every hole pixel, the photo's fine detail at its mirror image across the hole's nearest edge: texture of
    the surroundings at the same depth, so the fill has the grain of what is around it."""
    image_f = image.astype(np.float32)
    detail = image_f - cv2.GaussianBlur(image_f, (0, 0), DETAIL_SIGMA)
    _, labels = cv2.distanceTransformWithLabels(hole, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    edge_y, edge_x = np.nonzero(hole == 0)  # the labels number the pixels outside the hole in this (raster) order
    ys, xs = np.nonzero(hole)
    nearest = labels[ys, xs] - 1
    height, width = hole.shape
    mirror_y = np.clip(2 * edge_y[nearest] - ys, 0, height - 1)
    mirror_x = np.clip(2 * edge_x[nearest] - xs, 0, width - 1)
    inside = hole[mirror_y, mirror_x] > 0  # a mirror that lands in the hole again takes the edge pixel's detail
    mirror_y, mirror_x = np.where(inside, edge_y[nearest], mirror_y), np.where(inside, edge_x[nearest], mirror_x)
    filled = np.zeros_like(image_f)
    filled[ys, xs] = detail[mirror_y, mirror_x]
    return filled


def clean_plate(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The picture (H, W, 3) with `hole` ((H, W) uint8, 1: fill) invented: smooth colours, mirrored texture."""
    if not hole.any():
        return image.astype(np.float32)
    if hole.all():
        return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape).astype(np.float32)
    fill = smooth_fill(image, hole) + mirrored_detail(image, hole)
    return np.where(hole[..., None] > 0, np.clip(fill, 0, 255), image.astype(np.float32))
