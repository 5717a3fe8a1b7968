"""Salient-object animation in diffusion: only the masked object moves, the rest stays the photo.

Blended latent diffusion (RePaint-style): after every denoising step, the latents outside the mask are replaced by the
input picture's latent noised to that step's level, so the model only ever invents the object's motion; after
decoding, the picture is composited back outside the mask at full resolution, so the background equals the input
exactly. The mask is the same on every frame, so rolling the circle (`cycle`) and windows do not touch it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_blur(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Average over a (2r + 1)^2 box, edges averaging only what is inside: (B, 1, H, W) -> same."""
    return F.avg_pool2d(mask, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


class StillBackground:
    """The mask of one batch of pictures, on the latent grid and at full resolution, and the known background."""

    def __init__(self, pixel_mask: torch.Tensor, image_latents: torch.Tensor, scheduler, noise: torch.Tensor) -> None:
        """pixel_mask (B, 1, H, W) in [0, 1], white = may move; image_latents (B, 4, h, w); noise like the latents."""
        latent_size = image_latents.shape[-2:]
        # Area downsampling keeps a soft edge; one latent cell of blur feathers it so no seam shows at the border.
        self.latent_mask = box_blur(F.interpolate(pixel_mask, size=latent_size, mode="area"), 1)[:, :, None]
        # Feathered inwards only (never beyond the mask), so every pixel outside it is the input's own.
        self.pixel_mask = torch.minimum(box_blur(pixel_mask, 4), pixel_mask)[:, :, None]  # (B, 1, 1, H, W)
        self.image_latents, self.scheduler, self.noise = image_latents[:, :, None], scheduler, noise

    def blend(self, latents: torch.Tensor, timestep: torch.Tensor | None) -> torch.Tensor:
        """Latents (B, 4, F, h, w) with the outside replaced by the input's latent at `timestep`'s noise level
        (clean when None: after the last step)."""
        known = self.image_latents.expand_as(latents)
        if timestep is not None:
            batch, channels, frames, height, width = latents.shape
            flat = known.transpose(1, 2).reshape(batch * frames, channels, height, width)  # the scheduler's layout
            noise = self.noise.transpose(1, 2).reshape(flat.shape)
            noisy = self.scheduler.add_noise(flat, noise, timestep.expand(batch * frames))
            known = noisy.reshape(batch, frames, channels, height, width).transpose(1, 2)
        return self.latent_mask * latents + (1.0 - self.latent_mask) * known

    def composite(self, video: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """Decoded frames (B, 3, F, H, W) with the input pixels (B, 3, H, W) outside the mask."""
        return self.pixel_mask * video + (1.0 - self.pixel_mask) * pixels[:, :, None].to(video)
