"""Loop-safe interpolation."""

import numpy as np

from loopanimate.evaluation.metrics import seam_ratio
from loopanimate.frames import materialise
from loopanimate.interpolate import interpolate_loop
from tests.test_evaluation import as_video


def sliding_square(frames: int = 9) -> np.ndarray:
    """A square sliding right 4 px a frame and back to the start: a closed loop (last frame = first)."""
    video = np.zeros((frames, 32, 48, 3), np.uint8)
    positions = [4 + round(16 * np.sin(np.pi * k / (frames - 1))) for k in range(frames)]
    for k, x in enumerate(positions):
        video[k, 10:22, x : x + 12] = [240, 180, 30]
    return video


def test_interpolation_keeps_the_first_frame_and_the_loop_closed():
    video = sliding_square()
    smooth = materialise(interpolate_loop(video, 3, closed_loop=True))
    assert len(smooth) == (len(video) - 1) * 4 + 1
    assert np.array_equal(smooth[0], video[0]) and np.array_equal(smooth[-1], smooth[0])
    assert all(np.array_equal(smooth[4 * k], video[k]) for k in range(len(video) - 1))  # originals in place


def test_in_between_frames_lie_between_their_neighbours():
    video = sliding_square()
    smooth = materialise(interpolate_loop(video, 1))
    middle = smooth[1].astype(int)
    centre = np.nonzero(middle[16, :, 0] > 120)[0].mean()  # the square's row centre in the new frame
    before, after = (np.nonzero(video[k][16, :, 0] > 120)[0].mean() for k in (0, 1))
    assert min(before, after) - 1 <= centre <= max(before, after) + 1


def test_interpolated_loop_has_no_seam():
    smooth = materialise(interpolate_loop(sliding_square(), 2))
    assert seam_ratio(as_video(smooth.astype(np.float32) / 255)) < 1.5


def test_factor_zero_changes_nothing():
    video = sliding_square()
    assert interpolate_loop(video, 0) is video
