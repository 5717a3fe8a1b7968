"""The measures that see a broken loop: background change, texture loss, mask sanity."""

import numpy as np
import pytest

from loopanimate.evaluation.region_metrics import background_change, mask_sanity, texture_loss


def photo() -> np.ndarray:
    """Fine random texture everywhere (96x96)."""
    return np.random.default_rng(0).integers(40, 216, (96, 96, 3), dtype=np.uint8)


def object_mask() -> np.ndarray:
    mask = np.zeros((96, 96), np.float32)
    mask[30:66, 30:66] = 1.0
    return mask


def test_a_flat_filled_hole_is_texture_loss():
    picture = photo()
    frames = np.repeat(picture[None], 6, axis=0)
    frames[1:, 40:56, 40:56] = picture[40:56, 40:56].reshape(-1, 3).mean(axis=0).astype(np.uint8)  # a flat patch
    assert texture_loss(frames, picture) > 0.01


def test_texture_that_moves_is_no_loss():
    picture = photo()
    frames = np.stack([np.roll(picture, shift, axis=1) for shift in range(6)])  # the whole texture slides
    assert texture_loss(frames, picture) <= 0.01
    assert texture_loss(np.repeat(picture[None], 3, axis=0), picture) == 0.0  # nothing changed


def test_background_change_counts_only_outside_the_grown_mask():
    picture, mask = photo(), object_mask()
    frames = np.repeat(picture[None], 4, axis=0)
    frames[:, 28:68, 28:68] = 0  # inside the mask and within the 4-pixel margin: allowed
    assert background_change(frames, picture, mask) == 0.0
    frames[:, :, :10] = 255 - picture[:, :10]  # a strip far outside changes
    assert background_change(frames, picture, mask) > 10


def test_mask_sanity_counts_parts_and_border_beyond_one_side():
    mask = object_mask()
    assert mask_sanity(mask) == pytest.approx({"area": 36 * 36 / 96**2, "components": 1.0, "border": 0.0})
    cut = mask.copy()
    cut[60:, 40:56] = 1.0  # a subject cut by the bottom edge: one side is fine
    assert mask_sanity(cut)["border"] == 0.0
    corner = mask.copy()
    corner[:20, :20] = 1.0  # a second part wrapping the top-left corner
    assert mask_sanity(corner)["components"] == 2.0 and mask_sanity(corner)["border"] > 0.04
