"""Frames made on demand: a lazy sequence renders only what is asked for, and prefetching stays a few frames ahead."""

import threading

import numpy as np
import pytest

from loopanimate.frames import LazyFrames, materialise, prefetched


def counting_frames(count: int, log: list[int]) -> LazyFrames:
    lock = threading.Lock()

    def render(index: int) -> np.ndarray:
        with lock:
            log.append(index)
        return np.full((4, 4, 3), index, np.uint8)

    return LazyFrames(count, render, (4, 4, 3))


def test_nothing_is_rendered_until_asked_for():
    log: list[int] = []
    frames = counting_frames(10, log)
    assert len(frames) == 10 and frames.shape == (10, 4, 4, 3) and log == []
    assert frames[-1][0, 0, 0] == 9 and log == [9]


def test_prefetching_stays_a_few_frames_ahead():
    log: list[int] = []
    consumed = 0
    for frame in prefetched(counting_frames(200, log), ahead=4):
        assert frame[0, 0, 0] == consumed  # in order
        consumed += 1
        assert len(log) <= consumed + 4  # never the whole loop at once: memory stays flat in the loop's length
    assert consumed == 200 and sorted(log) == list(range(200))


def test_a_slice_is_lazy_too():
    log: list[int] = []
    shown = counting_frames(8, log)[:-1]
    assert len(shown) == 7 and log == []
    np.testing.assert_array_equal(materialise(shown)[:, 0, 0, 0], np.arange(7))


def test_an_index_past_the_end_is_an_index_error():
    with pytest.raises(IndexError):
        counting_frames(3, [])[3]
