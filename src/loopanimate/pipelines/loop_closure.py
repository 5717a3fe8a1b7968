"""Loop closure at sampling time: each mode's settings decided in one place, and the circle they run on.

`none` is the paper's (loops are learned from ALSS clips); `condition` conditions the last frame on the image too
(DynamiCrafter's loop mode); `cycle` denoises `num_frames - 1` frames as a circle (frame L-1 is followed by frame 0),
rolled anew every step so no frame is a fixed seam, in circular windows when longer than the model. Pure Python:
any face may import the list of modes without loading torch.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from loopanimate.errors import InvalidArgumentError

LOOP_CLOSURES = ("cycle", "none", "condition")  # the first is the default (measured best, docs/benchmarks.md)
# How a cycle longer than the model is split: tiles that cover each frame once (cost linear in length), or overlapping
# windows blended by weights (each frame twice). The first is the default (docs/benchmarks.md).
LOOP_WINDOWS = ("tiled", "overlap")
GOLDEN_RATIO_STEP = 0.6180339887  # fraction of the circle the seam moves each step: never repeats a short pattern


def check_frame_count(num_frames: int, loop_closure: str, max_frames: int) -> None:
    """Raise InvalidArgumentError unless `loop_closure` can make a loop of `num_frames` on a `max_frames` model."""
    if loop_closure not in LOOP_CLOSURES:
        raise InvalidArgumentError(f"loop_closure {loop_closure!r} is unknown: use one of {', '.join(LOOP_CLOSURES)}")
    if loop_closure == "cycle":
        if num_frames < 3:  # a circle of num_frames - 1 frames needs two to move between
            raise InvalidArgumentError(f"frames {num_frames} is out of range: a cycle needs at least 3 frames")
    elif not 2 <= num_frames <= max_frames:
        raise InvalidArgumentError(
            f"frames {num_frames} is out of range: give 2 to {max_frames} (the model's clip length), or loop closure "
            "cycle for any length"
        )


@dataclass(frozen=True)
class LoopClosure:
    """What one mode means for one loop: which frames are denoised, conditioned, windowed and rolled."""

    mode: str
    latent_frames: int  # frames denoised; a cycle's last frame is its first, appended after denoising
    conditioned_frames: tuple[int, ...]  # frames whose condition carries the image latent and mask 1
    windows: list[tuple[list[int], list[float] | None]]  # (frame indices, blend weights) per UNet call
    rolls: bool  # whether the circle turns between steps

    def offset(self, step: int) -> int:
        """How far the circle is rolled at denoising step `step` (0 for modes that do not roll)."""
        return cycle_offset(step, self.latent_frames) if self.rolls else 0


def plan_loop_closure(mode: str, num_frames: int, max_frames: int, windows: str = LOOP_WINDOWS[0]) -> LoopClosure:
    """The settings of `mode` for a loop of `num_frames` (the last equal to the first) on a `max_frames` model."""
    check_frame_count(num_frames, mode, max_frames)
    if windows not in LOOP_WINDOWS:
        raise InvalidArgumentError(f"loop windows {windows!r} are unknown: use one of {', '.join(LOOP_WINDOWS)}")
    if mode == "cycle":
        latent_frames = num_frames - 1
        split = tiled_windows if windows == "tiled" else circular_windows
        return LoopClosure(mode, latent_frames, (0,), split(latent_frames, max_frames), rolls=True)
    conditioned = (0, num_frames - 1) if mode == "condition" else (0,)
    return LoopClosure(mode, num_frames, conditioned, [(list(range(num_frames)), None)], rolls=False)


def cycle_offset(step: int, num_frames: int) -> int:
    """The roll at denoising step `step`: golden-ratio steps round the circle, so each step puts the seam elsewhere."""
    return round(step * GOLDEN_RATIO_STEP * num_frames) % num_frames


def roll_frames(video, shift: int):
    """Move frame i of a (B, C, F, H, W) tensor to position (i - shift) mod F; `roll_frames(x, -shift)` undoes it."""
    return video.roll(shifts=-shift, dims=2)


def tiled_windows(num_frames: int, window: int) -> list[tuple[list[int], None]]:
    """The circle cut into as few near-equal runs of at most `window` frames as cover it, each frame once. The cycle
    rolls the circle anew every step, so the cuts fall on other frames at every step and no border stays."""
    count = math.ceil(num_frames / window)
    starts = [round(k * num_frames / count) for k in range(count + 1)]
    return [(list(range(start, end)), None) for start, end in itertools.pairwise(starts)]


def circular_windows(num_frames: int, window: int, overlap: float = 0.5) -> list[tuple[list[int], list[float]]]:
    """Windows of `window` consecutive frames around a circle of `num_frames`, starting every `window * (1 - overlap)`
    frames, each with per-frame weights: a sine ramp (so window borders fade out), divided by the sum over the
    windows covering that frame, so every frame's weights add up to exactly one (the wrap included)."""
    if num_frames <= window:
        return [(list(range(num_frames)), [1.0] * num_frames)]
    count = math.ceil(num_frames / max(1, round(window * (1 - overlap))))
    starts = [round(k * num_frames / count) for k in range(count)]  # evenly round the circle
    ramp = [math.sin(math.pi * (i + 0.5) / window) for i in range(window)]  # > 0 everywhere, largest in the middle
    frames = [[(start + i) % num_frames for i in range(window)] for start in starts]
    total = [0.0] * num_frames
    for indices in frames:
        for index, weight in zip(indices, ramp, strict=True):
            total[index] += weight
    return [(indices, [w / total[i] for i, w in zip(indices, ramp, strict=True)]) for indices in frames]
