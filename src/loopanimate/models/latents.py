"""Pixels to the VAE's latent space, one definition for inference, the latent cache and training."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL


@torch.no_grad()
def encode_latents(
    vae: AutoencoderKL,
    pixels: torch.Tensor,
    chunk_size: int = 16,
    generator: torch.Generator | list[torch.Generator] | None = None,
    sample: bool = False,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Images (N, 3, H, W) in [-1, 1] -> latents (N, 4, H/8, W/8) times the scaling factor: the posterior's mode, or
    with `sample` a draw from it with `generator` (as PIA conditions). `device`: where the VAE runs, when it is not
    where its weights are now (model offload moves them there on `encode`)."""
    pixels = pixels.to(device=device or vae.device, dtype=vae.dtype)
    if sample:  # one draw for the whole batch, as diffusers' pipelines take it, so seeds give the same latents
        return (vae.encode(pixels).latent_dist.sample(generator) * vae.config.scaling_factor).contiguous()
    latents = [vae.encode(chunk).latent_dist.mode() for chunk in pixels.split(chunk_size)]
    return (torch.cat(latents) * vae.config.scaling_factor).contiguous()  # mode() is a strided view
