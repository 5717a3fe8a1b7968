"""ALSS and its ablation modes: properties over lengths and strides (hypothesis), and the too-short case."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopanimate.data.alss import ClipTooShortError, alss_indices, clip_span, min_stride

clips = st.integers(min_value=3, max_value=36)
strides = st.integers(min_value=1, max_value=6)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
extra = st.integers(min_value=0, max_value=300)


def draw(source_extra, clip_length, max_stride, seed, mode):
    needed = clip_span(clip_length, min_stride(clip_length, mode), mode) + 1
    return needed + source_extra, alss_indices(
        needed + source_extra, clip_length, np.random.default_rng(seed), max_stride=max_stride, mode=mode
    )


@settings(max_examples=300, deadline=None)
@given(extra, clips, strides, seeds)
def test_alss_is_a_loop_that_is_not_a_palindrome(source_extra, clip_length, max_stride, seed):
    frames, idx = draw(source_extra, clip_length, max_stride, seed, "alss")
    assert len(idx) == clip_length
    assert idx[0] == idx[-1]
    assert idx.min() >= 0 and idx.max() < frames
    for i in range(1, clip_length - 1):
        if i != clip_length - 1 - i:
            assert idx[i] != idx[clip_length - 1 - i], (i, idx.tolist())


@settings(max_examples=300, deadline=None)
@given(extra, clips, strides, seeds)
def test_alss_goes_forward_by_one_stride_then_back_in_steps_of_one_to_two_strides(
    source_extra, clip_length, max_stride, seed
):
    _, idx = draw(source_extra, clip_length, max_stride, seed, "alss")
    peak = int(np.argmax(idx))
    forward, back = np.diff(idx[: peak + 1]), -np.diff(idx[peak:])
    stride = forward[0]
    assert np.all(forward == stride)
    assert peak == (clip_length - 1 + 1) // 2  # ceil((N - 1) / 2) steps forward
    assert np.all((back >= 1) & (back <= 2 * stride))


@settings(max_examples=200, deadline=None)
@given(extra, clips, strides, seeds)
def test_palindrome_mirrors_and_plain_never_returns(source_extra, clip_length, max_stride, seed):
    frames, idx = draw(source_extra, clip_length, max_stride, seed, "palindrome")
    assert np.array_equal(idx, idx[::-1]) and idx.max() < frames
    frames, idx = draw(source_extra, clip_length, max_stride, seed, "plain")
    assert np.all(np.diff(idx) == idx[1] - idx[0]) and idx[1] > idx[0] and idx.max() < frames


def test_the_way_back_is_random():
    backs = {tuple(alss_indices(500, 35, np.random.default_rng(seed), stride=3)[18:]) for seed in range(20)}
    assert len(backs) > 15


def test_same_generator_state_same_clip():
    assert np.array_equal(
        alss_indices(300, 21, np.random.default_rng(7)), alss_indices(300, 21, np.random.default_rng(7))
    )


@pytest.mark.parametrize(("mode", "needed"), [("alss", 35), ("palindrome", 18), ("plain", 35)])
def test_shortest_video_that_fits_and_one_frame_less(mode, needed):
    assert len(alss_indices(needed, 35, np.random.default_rng(0), mode=mode)) == 35
    with pytest.raises(ClipTooShortError, match="too few"):
        alss_indices(needed - 1, 35, np.random.default_rng(0), mode=mode)


def test_unknown_mode():
    with pytest.raises(ValueError, match="mode="):
        alss_indices(100, 15, np.random.default_rng(0), mode="zigzag")
