"""Rolling, circular windows: the pieces of loop closure at sampling time and of loops longer than the model."""

import pytest
import torch

from loopanimate.pipelines.looping import circular_windows, cycle_offset, roll_frames


def test_rolling_then_unrolling_is_the_identity():
    video = torch.randn(2, 4, 9, 3, 3)
    for shift in range(-10, 11):
        assert torch.equal(roll_frames(roll_frames(video, shift), -shift), video)


def test_roll_moves_frame_shift_to_the_front():
    video = torch.arange(6.0).view(1, 1, 6, 1, 1)
    assert roll_frames(video, 2).flatten().tolist() == [2, 3, 4, 5, 0, 1]


def test_cycle_offsets_visit_many_seams():
    assert len({cycle_offset(step, 34) for step in range(25)}) > 15


@pytest.mark.parametrize(("frames", "window"), [(70, 36), (140, 36), (37, 36), (100, 16), (34, 36)])
def test_window_weights_sum_to_one_at_every_frame(frames, window):
    total = torch.zeros(frames)
    for indices, weights in circular_windows(frames, window):
        assert len(indices) == min(frames, window) and (weights > 0).all()
        total.index_add_(0, indices, weights)
    torch.testing.assert_close(total, torch.ones(frames))


def test_windows_wrap_around_the_end():
    windows = circular_windows(70, 36)
    assert any(indices[0] > indices[-1] for indices, _ in windows)  # a window that runs past the last frame into 0
