"""Loop closure: each mode's plan, rolling, circular windows (loops longer than the model)."""

import pytest
import torch

from loopanimate.errors import InvalidArgumentError
from loopanimate.pipelines.loop_closure import (
    circular_windows,
    cycle_offset,
    plan_loop_closure,
    roll_frames,
    tiled_windows,
)


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
    total = torch.zeros(frames, dtype=torch.float64)
    for indices, weights in circular_windows(frames, window):
        assert len(indices) == min(frames, window) and min(weights) > 0
        total.index_add_(0, torch.tensor(indices), torch.tensor(weights, dtype=torch.float64))
    torch.testing.assert_close(total, torch.ones(frames, dtype=torch.float64))


def test_windows_wrap_around_the_end():
    windows = circular_windows(70, 36)
    assert any(indices[0] > indices[-1] for indices, _ in windows)  # a window that runs past the last frame into 0


@pytest.mark.parametrize(
    ("mode", "latent_frames", "conditioned", "rolls"),
    [("cycle", 34, (0,), True), ("none", 35, (0,), False), ("condition", 35, (0, 34), False)],
)
def test_each_mode_decides_its_settings(mode, latent_frames, conditioned, rolls):
    plan = plan_loop_closure(mode, 35, 36)
    assert (plan.latent_frames, plan.conditioned_frames, plan.rolls) == (latent_frames, conditioned, rolls)
    assert plan.offset(3) != 0 if rolls else plan.offset(3) == 0


def test_only_a_cycle_runs_past_the_model_in_windows():
    assert len(plan_loop_closure("cycle", 71, 36).windows) > 1
    with pytest.raises(InvalidArgumentError, match="give 2 to 36"):
        plan_loop_closure("none", 37, 36)


@pytest.mark.parametrize(("frames", "window"), [(139, 36), (70, 36), (36, 36), (37, 36)])
def test_tiles_cover_every_frame_once_in_as_few_windows_as_fit(frames, window):
    tiles = tiled_windows(frames, window)
    covered = sorted(index for indices, _ in tiles for index in indices)
    assert covered == list(range(frames)) and max(len(indices) for indices, _ in tiles) <= window
    assert len(tiles) == -(-frames // window)  # 139 frames: 4 UNet calls a step, where overlapping windows take 8


def test_a_long_cycle_is_tiled_by_default_and_overlaps_on_request():
    assert len(plan_loop_closure("cycle", 140, 36).windows) == 4
    assert len(plan_loop_closure("cycle", 140, 36, windows="overlap").windows) == 8
