"""Pixels to the VAE's latent space, one definition for inference, the latent cache and training."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, pixels: torch.Tensor, chunk_size: int = 16) -> torch.Tensor:
    """Images (N, 3, H, W) in [-1, 1] -> latents (N, 4, H/8, W/8): the posterior's mode times the scaling factor."""
    pixels = pixels.to(device=vae.device, dtype=vae.dtype)
    latents = [vae.encode(chunk).latent_dist.mode() for chunk in pixels.split(chunk_size)]
    return (torch.cat(latents) * vae.config.scaling_factor).contiguous()  # mode() is a strided view
