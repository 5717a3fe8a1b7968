"""Measures of a loop against its photo and the mask that said what may move: what a user sees as broken.

Frames are (F, H, W, 3) uint8, the photo (H, W, 3) uint8, the mask (H, W) in [0, 1] (white: may move). Background
change and texture loss are in the loop's pixels; mask sanity needs only the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

MARGIN = 4  # pixels around the mask that a feathered edge may blend into: not counted as background
CHANGED = 12.0  # mean absolute RGB difference to the photo above which a pixel counts as changed
DETAIL_WINDOW = 5  # local detail: the grey-level standard deviation in this square window
REFERENCE_REACH = 17  # the photo's detail is the least within this window, so an edge that moved away is no loss
MIN_DETAIL = 3.0  # grey levels: a photo this flat has no texture to lose
SPECK = 0.001  # share of the picture under which a piece of the mask is a speck, not a component


def _binary(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask, np.float32) > 0.5


def background_change(frames: np.ndarray, photo: np.ndarray, mask: np.ndarray, margin: int = MARGIN) -> float:
    """Mean absolute difference (grey levels, 0-255) to the photo outside the mask grown by `margin` pixels.
    Goal 0: nothing the mask leaves out may move."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    outside = cv2.dilate(_binary(mask).astype(np.uint8), kernel) == 0
    if not outside.any():
        return 0.0
    difference = np.abs(frames[:, outside].astype(np.int16) - photo[outside].astype(np.int16))  # (F, N, 3)
    return float(difference.mean())


def local_detail(picture: np.ndarray) -> np.ndarray:
    """Grey-level standard deviation in a DETAIL_WINDOW square around every pixel: (H, W) float32."""
    grey = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    size = (DETAIL_WINDOW, DETAIL_WINDOW)
    mean, mean_square = cv2.blur(grey, size), cv2.blur(grey * grey, size)
    return np.sqrt(np.maximum(mean_square - mean * mean, 0.0))


def texture_loss(frames: np.ndarray, photo: np.ndarray) -> float:
    """Share of changed pixels whose local detail fell below half of the photo's there: flat fills and smears.

    The photo's detail at a place is the least within REFERENCE_REACH pixels, so an edge that merely moved on is not a
    loss, while a flat patch in fur or tissue is. Goal <= 0.01. 0 when nothing changed."""
    reference = cv2.erode(local_detail(photo), np.ones((REFERENCE_REACH, REFERENCE_REACH), np.uint8))
    textured = reference >= MIN_DETAIL
    changed_count = lost_count = 0
    for frame in frames:
        changed = np.abs(frame.astype(np.int16) - photo.astype(np.int16)).mean(axis=2) > CHANGED
        changed_count += int(changed.sum())
        lost_count += int((changed & textured & (local_detail(frame) < 0.5 * reference)).sum())
    return lost_count / changed_count if changed_count else 0.0


def mask_sanity(mask: np.ndarray) -> dict[str, float]:
    """Area share, connected components (specks under SPECK of the picture left out), and the share of the picture's
    border the mask covers beyond its most covered side (a subject may be cut by one edge; more is background)."""
    binary = _binary(mask)
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    components = int((stats[1:, cv2.CC_STAT_AREA] >= SPECK * binary.size).sum())
    sides = [binary[0, :], binary[-1, :], binary[:, 0], binary[:, -1]]
    covered = [int(side.sum()) for side in sides]
    border_length = sum(len(side) for side in sides)
    return {
        "area": float(binary.mean()),
        "components": float(components),
        "border": (sum(covered) - max(covered)) / border_length,
    }
