"""A loop's frames made on demand, so a long or large loop streams from the engine to the encoder in flat memory.

`LazyFrames` is a sequence whose items are rendered when asked for (an engine's frame, an interpolated frame);
`prefetched` iterates it with a few frames rendered ahead on worker threads while the caller encodes.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

THREADS = 2  # frames are independent; OpenCV and numpy release the GIL, so two threads use both cores


class LazyFrames(Sequence):
    """`count` frames (H, W, 3) uint8, frame i made by `render(i)` each time it is asked for (nothing is kept)."""

    def __init__(self, count: int, render: Callable[[int], np.ndarray], shape: tuple[int, int, int]) -> None:
        self.count, self.render, self.shape = count, render, (count, *shape)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if isinstance(index, slice):
            indices = range(self.count)[index]
            return LazyFrames(len(indices), lambda i: self.render(indices[i]), self.shape[1:])
        if not -self.count <= index < self.count:
            raise IndexError(index)
        return self.render(index % self.count)


Frames = np.ndarray | Sequence[np.ndarray]


def prefetched(frames: Frames, ahead: int = 2 * THREADS) -> Iterator[np.ndarray]:
    """The frames in order; a lazy sequence is rendered `ahead` frames in advance on THREADS workers."""
    if not isinstance(frames, LazyFrames):
        yield from frames
        return
    pool = ThreadPoolExecutor(THREADS)
    pending: collections.deque = collections.deque()
    try:
        for index in range(len(frames)):
            pending.append(pool.submit(frames.render, index))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        # A consumer that stops early (an error, Ctrl-C) drops the frames not started; the one or two being made end
        # on their own, so no wait here can be interrupted again.
        pool.shutdown(wait=False, cancel_futures=True)


def materialise(frames: Frames) -> np.ndarray:
    """All frames as one (F, H, W, 3) array (for small loops and tests; a large loop should stream)."""
    return frames if isinstance(frames, np.ndarray) else np.stack(list(prefetched(frames)))
