"""Loops closed at sampling time: rolling the frame circle, and circular windows for loops longer than the model.

Both treat a loop of L unique frames as a circle (frame L-1 is followed by frame 0), so no frame is a fixed seam.
"""

from __future__ import annotations

import math

import torch


def roll_frames(video: torch.Tensor, shift: int) -> torch.Tensor:
    """Move frame i of (B, C, F, H, W) to position (i - shift) mod F; `roll_frames(x, -shift)` undoes it."""
    return torch.roll(video, shifts=-shift, dims=2)


def cycle_offset(step: int, num_frames: int) -> int:
    """The roll at denoising step `step`: golden-ratio steps round the circle, so each step puts the seam elsewhere."""
    return round(step * 0.6180339887 * num_frames) % num_frames


def circular_windows(num_frames: int, window: int, overlap: float = 0.5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Windows of `window` consecutive frames around a circle of `num_frames`, starting every `window * (1 - overlap)`
    frames, each with per-frame weights: a sine ramp (so window borders fade out), divided by the sum over the
    windows covering that frame, so every frame's weights add up to exactly one (the wrap included)."""
    if num_frames <= window:
        return [(torch.arange(num_frames), torch.ones(num_frames))]
    count = math.ceil(num_frames / max(1, round(window * (1 - overlap))))
    starts = [round(k * num_frames / count) for k in range(count)]  # evenly round the circle
    ramp = torch.sin(math.pi * (torch.arange(window) + 0.5) / window)  # > 0 everywhere, largest in the middle
    frames = [(start + torch.arange(window)) % num_frames for start in starts]
    total = torch.zeros(num_frames).index_add_(0, torch.cat(frames), ramp.repeat(count))
    return [(indices, ramp / total[indices]) for indices in frames]
