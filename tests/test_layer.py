"""A sway, bob or breath moves the object as a rigid layer over its plate: a tower tilts with a straight axis, far
enough to see; what a picture edge cuts stays; what the object uncovers is ground, not a hole."""

import cv2
import numpy as np

from loopanimate.engines import animate_without_weights
from loopanimate.engines.layer import LayerEngine
from loopanimate.engines.prompt import plan_motion

SKY, GROUND, STONE, BAND = (200, 220, 240), (90, 120, 60), (120, 110, 100), (60, 50, 40)


def tower(cut: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A banded stone tower standing on grass under the sky (its foot in the grass), or cut by the picture's bottom
    edge; the tower's mask."""
    picture = np.full((256, 256, 3), SKY, np.uint8)
    picture[200:] = GROUND
    bottom = 256 if cut else 205
    picture[60:bottom, 118:138] = STONE
    picture[60:bottom:8, 118:138] = BAND
    mask = np.zeros((256, 256), np.float32)
    mask[60:bottom, 118:138] = 1.0
    return picture, mask


def axis(frame: np.ndarray, rows: range) -> tuple[np.ndarray, np.ndarray]:
    """The tower's centre line, to a fraction of a pixel: for each row, the centroid of how far each pixel is from
    the sky's colour towards the stone's (an edge pixel half covered counts half)."""
    rows = np.array(list(rows))
    distance = np.abs(frame[rows].astype(float) - SKY).sum(axis=-1) / np.abs(np.subtract(STONE, SKY)).sum()
    weight = np.clip(distance, 0.0, 1.0)
    return rows.astype(float), (weight * np.arange(frame.shape[1])).sum(axis=1) / weight.sum(axis=1)


def test_a_tower_tilts_about_its_foot_with_a_straight_axis():
    picture, mask = tower()
    frames = animate_without_weights(picture, "the tower sways", num_frames=35, mask=mask)
    peak = max(range(35), key=lambda index: np.abs(frames[index].astype(int) - picture).sum())
    rows, centres = axis(frames[peak], range(80, 190))  # the body, not its slanted ends
    line = np.polyfit(rows, centres, 1)
    assert np.abs(centres - np.polyval(line, rows)).max() <= 1.0  # straight: no S, no bend
    assert abs(line[0]) >= 0.03  # a lean of 3% or more: the top travels 3% of the height beyond its foot


def test_the_frames_do_not_depend_on_the_order_they_are_made_in():
    picture, mask = tower(cut=True)  # a cut foot: pinned, solved as rigidly as possible
    phases = [2 * np.pi * k / 34 for k in (9, 3, 17)]
    first = LayerEngine(picture, mask, plan_motion("it sways"), seed=0)
    second = LayerEngine(picture, mask, plan_motion("it sways"), seed=0)
    forward = [first.frame(phase) for phase in phases]
    backward = [second.frame(phase) for phase in phases[::-1]][::-1]
    for one, other in zip(forward, backward, strict=True):
        np.testing.assert_array_equal(one, other)


def test_what_the_picture_edge_cuts_stays_and_the_top_still_moves():
    picture, mask = tower(cut=True)
    frames = animate_without_weights(picture, "the tower sways", num_frames=35, mask=mask)
    np.testing.assert_array_equal(frames[:, 255], np.broadcast_to(picture[255], frames[:, 255].shape))  # the cut
    tops = [axis(frame, range(64, 70))[1].mean() for frame in frames]
    assert np.ptp(tops) > 4


def test_what_the_object_uncovers_is_ground_and_sky_not_a_hole():
    picture, mask = tower()
    frames = animate_without_weights(picture, "the tower bobs strongly", num_frames=35, mask=mask)
    peak = frames[max(range(35), key=lambda index: np.abs(frames[index].astype(int) - picture).sum())]
    behind = np.where(np.arange(256)[:, None, None] < 200, SKY, GROUND)  # what lies behind the tower, row by row
    shows_behind = np.abs(peak.astype(int) - behind).sum(axis=-1) < 30
    left = (mask > 0) & (np.arange(256)[:, None] >= 197)  # the foot's last 8 rows: a strong bob rises 15 px
    assert shows_behind[left].mean() > 0.95  # ground where it stood: no hole, no smear
    assert peak[left].min() > 40  # nothing dark


def test_the_plate_has_no_stair_steps_where_the_holes_outline_turns(monkeypatch):
    """Rows and columns cross the hole with spans that jump where its outline turns: unsmoothed, the fill showed
    stair steps where a nodding cat's face uncovered its plate (the outside trial). Colours only: the mirrored grain
    is meant to be rough."""
    import skimage.data

    from loopanimate.engines import plate
    from loopanimate.engines.saliency import salient_mask

    cat = skimage.data.chelsea()
    hole = cv2.dilate((salient_mask(cat) > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8))
    inner = cv2.erode(hole, np.ones((9, 9), np.uint8)) > 0
    monkeypatch.setattr(plate, "mirrored_detail", lambda image, hole: np.zeros(image.shape, np.float32))

    def steps() -> float:  # the 99th percentile of the colour jumps between neighbouring columns inside the hole
        fill = plate.clean_plate(cat, hole)
        return float(np.percentile(np.abs(np.diff(fill, axis=1)).sum(axis=-1)[inner[:, 1:]], 99))

    smoothed = steps()
    monkeypatch.setattr(plate, "SMOOTHING", 0.0)
    assert smoothed < 0.7 * steps()  # measured: 27 against 53 grey levels
