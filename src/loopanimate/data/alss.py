"""ALSS, the asymmetric loop sampling strategy (paper §4): training clips that end on the frame they start on.

Rule for a clip of N frames from a video of T frames (`docs/alss.md` draws it):
  - forward: m = ceil((N - 1) / 2) steps of a stride s from a random start frame, up to the peak start + m * s;
  - back: the remaining b = floor((N - 1) / 2) steps return to the start with random lengths in [1, 2s],
    drawn so that a frame and its mirror (positions i and N - 1 - i) are never the same source frame.
So idx[0] == idx[-1], every index lies in [0, T), and the clip is a loop that is not played backwards.
"""

from __future__ import annotations

import math

import numpy as np

from loopanimate.errors import InvalidArgumentError, LoopAnimateError

MODES = ("alss", "palindrome", "plain")


class ClipTooShortError(LoopAnimateError):
    """The source video has too few frames for a clip of this length."""


def min_stride(clip_length: int, mode: str) -> int:
    # With stride 1 and an odd clip the only way back is the exact mirror, so ALSS needs 2 there.
    return 2 if mode == "alss" and clip_length % 2 == 1 else 1


def clip_span(clip_length: int, stride: int, mode: str) -> int:
    """Source frames between a clip's start and its farthest frame."""
    steps = {
        "plain": clip_length - 1,
        "alss": math.ceil((clip_length - 1) / 2),
        "palindrome": math.ceil(clip_length / 2) - 1,
    }[mode]
    return steps * stride


def _back_steps(forward: int, stride: int, back: int, rng: np.random.Generator, attempts: int = 100) -> np.ndarray:
    """`back` step lengths in [1, 2 * stride] summing to `forward * stride`, drawn from the clip's end, whose running
    sums never equal i * stride (the mirror of forward step i)."""
    total, longest = forward * stride, 2 * stride
    for _ in range(attempts):
        sums, running = [], 0
        for i in range(1, back + 1):
            remaining = back - i
            low = max(running + 1, total - remaining * longest)
            high = min(running + longest, total - remaining)
            # The last running sum is the peak; for an odd clip it is its own mirror, so it is exempt.
            choices = [candidate for candidate in range(low, high + 1) if i == back or candidate != i * stride]
            if not choices:
                break
            running = int(rng.choice(choices))
            sums.append(running)
        else:
            return np.diff([0, *sums])
    raise ClipTooShortError(f"no asymmetric way back for forward={forward}, stride={stride}, back={back}")


def alss_indices(
    num_source_frames: int,
    clip_length: int,
    rng: np.random.Generator,
    stride: int | None = None,
    max_stride: int = 4,
    mode: str = "alss",
) -> np.ndarray:
    """Source-frame indices of one training clip: `alss` (the paper's loop), `palindrome` (forward, then the same frames
    backwards: the ablation), or `plain` (forward only, no loop). A random stride in [minimum, max_stride] that fits the
    video is drawn unless `stride` is given. Raises ClipTooShortError when no stride fits."""
    if mode not in MODES:
        raise InvalidArgumentError(f"mode={mode!r}: use one of {', '.join(MODES)}")
    if clip_length < 3:
        raise InvalidArgumentError(f"clip_length={clip_length}: a loop needs at least 3 frames")
    smallest = min_stride(clip_length, mode)
    if stride is None:
        fitting = [
            s
            for s in range(smallest, max(smallest, max_stride) + 1)
            if clip_span(clip_length, s, mode) < num_source_frames
        ]
        if not fitting:
            raise ClipTooShortError(
                f"{num_source_frames} frames are too few for a {clip_length}-frame {mode} clip "
                f"(needs {clip_span(clip_length, smallest, mode) + 1})"
            )
        stride = int(rng.choice(fitting))
    elif stride < smallest or clip_span(clip_length, stride, mode) >= num_source_frames:
        raise ClipTooShortError(
            f"stride {stride} does not fit a {clip_length}-frame {mode} clip in {num_source_frames} frames"
        )
    start = int(rng.integers(0, num_source_frames - clip_span(clip_length, stride, mode)))
    if mode == "plain":
        return start + stride * np.arange(clip_length)
    if mode == "palindrome":
        half = start + stride * np.arange(math.ceil(clip_length / 2))
        return np.concatenate([half, half[::-1][clip_length % 2 :]])  # an even clip holds its peak for two frames
    forward = math.ceil((clip_length - 1) / 2)
    back = clip_length - 1 - forward
    up = start + stride * np.arange(forward + 1)  # positions 0 .. forward: start ... peak
    from_end = np.cumsum(
        _back_steps(forward, stride, back, rng)
    )  # distance from start of positions N-2, N-3, ..., peak
    return np.concatenate([up, start + from_end[::-1][1:], [start]])
