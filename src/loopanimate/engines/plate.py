"""The background behind the object, invented with texture: what a spinning object uncovers (never a flat fill)."""

from __future__ import annotations

import cv2
import numpy as np

PLATE_SIDE = 160  # the smooth fill runs at this long side, then is upsampled: it is the costly step
DETAIL_SIGMA = 2.0  # pixels: detail finer than this blur is carried over from the mirrored surroundings
RIM_SKIP = 3  # pixels past the hole that the interpolation across it skips
GRAIN_RING = 8  # pixels around the hole whose detail sets the grain's size ...
GRAIN_LIMIT = 3.0  # ... mirrored detail is clipped to this many times its median there
SMOOTHING = 0.05  # the interpolated colours are smoothed over this share of the hole's size (the root of its area)
EDGE_COLOUR = 60.0  # grey levels: colour steps much larger than this are edges the smoothing keeps
SMOOTH_SIGMA = 3.0  # pixels: the smoothing runs at the size where its reach is this


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


def _nearest_outside(hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the index along its row of the nearest pixel outside the hole to its left and to its right
    (-1 and the row's length where there is none)."""
    width = hole.shape[1]
    columns = np.broadcast_to(np.arange(width), hole.shape)
    left = np.maximum.accumulate(np.where(hole, -1, columns), axis=1)
    right = np.minimum.accumulate(np.where(hole, width, columns)[:, ::-1], axis=1)[:, ::-1]
    return left, right


def _span_fill(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each hole pixel's colour interpolated along its row between the hole's borders there, and the weight of that
    guess, 1 / span^2 (0 where the row does not cross the hole from side to side)."""
    left, right = _nearest_outside(hole)
    rows = np.arange(hole.shape[0])[:, None]
    crossed = (left >= 0) & (right < hole.shape[1])
    left_c, right_c = np.clip(left, 0, hole.shape[1] - 1), np.clip(right, 0, hole.shape[1] - 1)
    span = np.maximum(right_c - left_c, 1).astype(np.float32)
    share = ((np.arange(hole.shape[1], dtype=np.float32)[None, :] - left_c) / span)[..., None]
    colour = (1 - share) * image[rows, left_c] + share * image[rows, right_c]
    return colour.astype(np.float32), np.where(crossed & (hole > 0), 1.0 / span**2, 0.0).astype(np.float32)


def spanned_fill(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hole's colours interpolated across it along rows and along columns, each weighted by 1 / span^2: a thin
    object's place takes the colours beside it, and a horizon behind a tower stays a sharp line. Also the summed
    weight: 0 where neither a row nor a column crosses the hole."""
    # Only the hole's box, grown by the pixel that borders it, is read or changed.
    rows, columns = np.nonzero(hole)
    height, width = hole.shape
    box = np.s_[max(rows.min() - 1, 0) : rows.max() + 2, max(columns.min() - 1, 0) : columns.max() + 2]
    inside, pixels = hole[box], image[box].astype(np.float32)
    across, across_weight = _span_fill(pixels, inside)
    down, down_weight = _span_fill(pixels.transpose(1, 0, 2), inside.T)
    down, down_weight = down.transpose(1, 0, 2), down_weight.T
    colour, weight = np.zeros((height, width, 3), np.float32), np.zeros((height, width), np.float32)
    weight[box] = across_weight + down_weight
    blend = across * across_weight[..., None] + down * down_weight[..., None]
    colour[box] = blend / np.maximum(weight[box], 1e-12)[..., None]
    return colour, weight


def mirrored_detail(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """For every hole pixel, the photo's fine detail at its mirror image across the nearest edge of the hole grown by
    RIM_SKIP: texture of the surroundings, so the fill has the grain of what is around it. Not across the hole's own
    edge: the object's rim just outside it (its halo, its wisps) mirrored in drew its old outline into the plate."""
    image_f = image.astype(np.float32)
    detail = image_f - cv2.GaussianBlur(image_f, (0, 0), DETAIL_SIGMA)
    grown = cv2.dilate(hole, np.ones((2 * RIM_SKIP + 1,) * 2, np.uint8))
    _, labels = cv2.distanceTransformWithLabels(grown, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    edge_y, edge_x = np.nonzero(grown == 0)  # the labels number the pixels outside the hole in this (raster) order
    ys, xs = np.nonzero(hole)
    nearest = labels[ys, xs] - 1
    height, width = hole.shape
    mirror_y = np.clip(2 * edge_y[nearest] - ys, 0, height - 1)
    mirror_x = np.clip(2 * edge_x[nearest] - xs, 0, width - 1)
    inside = grown[mirror_y, mirror_x] > 0  # a mirror that lands in the hole again takes the edge pixel's detail
    mirror_y, mirror_x = np.where(inside, edge_y[nearest], mirror_y), np.where(inside, edge_x[nearest], mirror_x)
    filled = np.zeros_like(image_f)
    # No more than the surroundings' usual grain: a lone edge near the hole (a horizon) is no texture to repeat.
    ring = (cv2.dilate(grown, np.ones((2 * GRAIN_RING + 1,) * 2, np.uint8)) > 0) & (grown == 0)
    grain = GRAIN_LIMIT * np.median(np.abs(detail[ring]), axis=0) if ring.any() else np.zeros(3, np.float32)
    filled[ys, xs] = np.clip(detail[mirror_y, mirror_x], -grain, grain)
    return filled


def smoothed(colours: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`colours` (H, W, 3 float32) through a bilateral filter over SMOOTHING of the hole's size, run at the size where
    that is SMOOTH_SIGMA pixels (a filter over 30 pixels of a 512 picture took a second; the colours are smooth)."""
    sigma = max(1.0, SMOOTHING * np.sqrt(float(hole.sum())))
    scale = min(1.0, SMOOTH_SIGMA / sigma)
    height, width = hole.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.bilateralFilter(cv2.resize(colours, size, interpolation=cv2.INTER_AREA), -1, EDGE_COLOUR, sigma * scale)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def clean_plate(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The picture (H, W, 3) with `hole` ((H, W) uint8, 1: fill) invented: colours interpolated across the hole (Telea
    inpainting where no row or column crosses it), and the surroundings' texture mirrored in."""
    if not hole.any():
        return image.astype(np.float32)
    if hole.all():
        return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape).astype(np.float32)
    # Spans end a few pixels past the hole: a tight mask leaves the object's own rim just outside it.
    spanned, weight = spanned_fill(image, cv2.dilate(hole, np.ones((2 * RIM_SKIP + 1,) * 2, np.uint8)))
    smooth = np.where(weight[..., None] > 0, spanned, smooth_fill(image, hole))  # Telea where nothing crosses it
    # Rows and columns cross the hole with spans that jump where its outline turns: smoothed, their colours meet
    # without the stair steps that showed where a nodding cat's face uncovered its plate; a bilateral filter, so a
    # horizon behind the object (a jump of more than EDGE_COLOUR) stays a line.
    smooth = smoothed(np.where(hole[..., None] > 0, smooth, image.astype(np.float32)), hole)
    fill = smooth + mirrored_detail(image, hole)
    return np.where(hole[..., None] > 0, np.clip(fill, 0, 255), image.astype(np.float32))
