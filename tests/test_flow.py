"""Fluids flow: an Eulerian loop inside the region closes exactly, moves its texture visibly the way asked, keeps the
seam no larger than a typical step, and never changes what lies outside the region."""

import cv2
import numpy as np
import pytest

from loopanimate.engines import motion_frames
from loopanimate.engines.flow import FlowLoop, velocity_field
from loopanimate.frames import materialise

SIZE = 192


@pytest.fixture
def lake() -> tuple[np.ndarray, np.ndarray]:
    """A sky gradient over textured water (the lower half): the picture and the water's mask."""
    rng = np.random.default_rng(0)
    picture = np.zeros((SIZE, SIZE, 3), np.uint8)
    picture[: SIZE // 2] = np.linspace([90, 140, 220], [200, 220, 250], SIZE // 2)[:, None].astype(np.uint8)
    ripples = cv2.GaussianBlur(rng.uniform(0, 255, (SIZE // 2, SIZE, 3)).astype(np.float32), (0, 0), 2.0)
    picture[SIZE // 2 :] = np.clip((ripples - 128) * 3 + np.array([30, 80, 120]), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[SIZE // 2 :] = 1.0
    return picture, mask


def steps(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change from each frame to the next, the seam (last to first) included."""
    following = np.roll(frames[:-1], -1, axis=0).astype(np.float32)
    return np.abs(following - frames[:-1]).mean(axis=(1, 2, 3))


def shift(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(x, y) pixels the texture moved from `before` to `after` (phase correlation of grey crops)."""
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) for frame in (before, after)]
    (x, y), _ = cv2.phaseCorrelate(*grey)
    return x, y


def test_the_loop_closes_exactly_and_frame_zero_is_the_picture(lake):
    picture, mask = lake
    frames = materialise(motion_frames(picture, "the water flows", num_frames=35, mask=mask))
    np.testing.assert_array_equal(frames[0], picture)
    np.testing.assert_array_equal(frames[-1], picture)


def test_the_seam_is_no_larger_than_the_median_step(lake):
    picture, mask = lake
    frames = materialise(motion_frames(picture, "the water ripples", num_frames=35, mask=mask))
    change = steps(frames)
    assert change[-1] <= np.median(change), change


def test_nothing_outside_the_region_changes(lake):
    picture, mask = lake
    frames = materialise(motion_frames(picture, "the water flows", num_frames=35, mask=mask))
    np.testing.assert_array_equal(
        frames[:, : SIZE // 2], np.broadcast_to(picture[: SIZE // 2], frames[:, : SIZE // 2].shape)
    )


@pytest.mark.parametrize(("prompt", "sign"), [("the water flows to the right", 1), ("the water flows left", -1)])
def test_the_texture_moves_visibly_the_way_asked(lake, prompt, sign):
    picture, mask = lake
    frames = materialise(motion_frames(picture, prompt, num_frames=35, mask=mask))
    middle = np.s_[SIZE // 2 + 24 : SIZE - 24, 24:-24]  # away from the region's still outline
    x, y = shift(frames[0][middle], frames[6][middle])
    assert sign * x > 3.0 and abs(y) < 1.5, (x, y)  # 1.2 px a frame nominal at 192 px, eased to 0.8 at the seam


def test_arrows_steer_the_flow(lake):
    picture, mask = lake
    down = np.array([[SIZE / 2, SIZE * 0.6, SIZE / 2, SIZE * 0.9]], np.float32)  # one arrow pointing down
    loop = FlowLoop(picture, mask, (1.0, 0.0), 2.0, period=34, arrows=down)
    middle = np.s_[SIZE // 2 + 24 : SIZE - 24, 24:-24]
    x, y = shift(loop.frame(0)[middle], loop.frame(6)[middle])
    assert y > 3.0 and abs(x) < 1.5, (x, y)


def test_the_field_is_still_at_the_regions_outline_and_outside():
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1.0
    field = velocity_field(mask, (1.0, 0.0), 2.0, seed=0)
    speed = np.hypot(field[..., 0], field[..., 1])
    assert speed[mask == 0].max() == 0.0 and speed[32, 32] > 1.5


def test_anchors_never_move(lake):
    picture, mask = lake
    anchor = np.array([[SIZE / 2, SIZE * 0.75]], np.float32)
    frames = materialise(motion_frames(picture, "the water flows", num_frames=35, mask=mask, anchors=anchor))
    x, y = int(anchor[0, 0]), int(anchor[0, 1])
    held = np.s_[:, y - 2 : y + 3, x - 2 : x + 3]
    np.testing.assert_array_equal(frames[held], np.broadcast_to(picture[held[1:]], frames[held].shape))
    assert np.abs(frames[:, SIZE // 2 + 30 :, :40].astype(int) - picture[SIZE // 2 + 30 :, :40]).mean() > 5  # elsewhere


def test_anchors_never_move_in_a_sway():
    picture = np.full((128, 128, 3), 235, np.uint8)
    picture[30:120, 50:78] = (180, 60, 40)  # a post standing on the bottom edge
    picture[30:120, 50:78:6] = (90, 30, 20)  # with upright stripes, so a sideways lean shows
    mask = np.zeros((128, 128), np.float32)
    mask[30:120, 50:78] = 1.0
    anchor = np.array([[64.0, 40.0]], np.float32)  # its top, pinned
    frames = materialise(motion_frames(picture, "the post sways", num_frames=35, mask=mask, anchors=anchor))
    np.testing.assert_array_equal(frames[:, 38:43, 62:67], np.broadcast_to(picture[38:43, 62:67], (35, 5, 5, 3)))
    free = materialise(motion_frames(picture, "the post sways", num_frames=35, mask=mask))
    assert np.abs(free[:, 38:43, 62:67].astype(int) - picture[38:43, 62:67]).max() > 20  # unpinned, the top moves
