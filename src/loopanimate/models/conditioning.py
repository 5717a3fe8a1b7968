"""Pixel-level image conditioning (the paper's SDSLC): image latent and mask channels for conv_in."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from loopanimate.models.layout import CONDITION_CHANNELS


def frame_conditioning(
    image_latents: torch.Tensor, num_frames: int, conditioned_frames: Sequence[int] = (0,)
) -> torch.Tensor:
    """The (B, 5, F, h, w) condition: image latent and a mask of 1 on `conditioned_frames`, zeros elsewhere."""
    batch, channels, height, width = image_latents.shape  # (B, 4, h, w)
    condition = image_latents.new_zeros(batch, CONDITION_CHANNELS, num_frames, height, width)
    for frame in conditioned_frames:
        condition[:, :channels, frame] = image_latents
        condition[:, channels, frame] = 1.0
    return condition
