"""The training objective (paper §3): epsilon-prediction MSE on the video latents of one micro-batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from loopanimate.models import frame_conditioning
from loopanimate.models.latents import encode_latents
from loopanimate.pipelines import LoopAnimatePipeline
from loopanimate.training.config import TrainConfig

# Scaled latents should have unit variance (Stable Diffusion's rule); far from it, the noise schedule drowns the
# signal or barely touches it (experiments/noisy_frames.py: a std of 0.22 left frames noise-like).
LATENT_STD_RANGE = (0.5, 2.0)


@torch.no_grad()
def clip_latents(pipe: LoopAnimatePipeline, batch: dict, device: torch.device) -> torch.Tensor:
    """A micro-batch's video latents (B, 4, F, h, w), scaled by the VAE's scaling factor: from the cache or encoded."""
    if "latents" in batch:
        latents = batch["latents"].to(device)  # (B, F, 4, h, w), from the cache
    else:
        pixels = batch["pixel_values"]  # (B, F, 3, H, W)
        latents = encode_latents(pipe.vae, pixels.flatten(0, 1)).unflatten(0, pixels.shape[:2])
    return latents.permute(0, 2, 1, 3, 4).float()


def latent_scale_warning(pipe: LoopAnimatePipeline, batch: dict, device: torch.device) -> str | None:
    """A one-line warning when the batch's scaled latents are far from unit variance, with the factor that fits."""
    std = float(clip_latents(pipe, batch, device).std())
    low, high = LATENT_STD_RANGE
    if low <= std <= high:
        return None
    factor = pipe.vae.config.scaling_factor
    return (
        f"warning: the training latents have a standard deviation of {std:.3g}, not about 1: the VAE's "
        f"scaling_factor {factor:.5g} does not fit these videos; set it to {factor / std:.5g} in vae/config.json"
    )


def diffusion_loss(
    pipe: LoopAnimatePipeline,
    unet,
    batch: dict,
    scheduler: DDPMScheduler,
    config: TrainConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """Epsilon MSE of one micro-batch: noise the clip's latents, condition frame 0 on its clean latent (pixel level) and
    the first frame's CLIP tokens (feature level, down blocks), the caption in the mid and up blocks."""
    device = generator.device
    with torch.no_grad():
        latents = clip_latents(pipe, batch, device)
        batch_size, _, num_frames = latents.shape[:3]
        keep_image = torch.rand(batch_size, generator=generator, device=device) >= config.image_dropout
        keep_text = torch.rand(batch_size, generator=generator, device=device) >= config.text_dropout
        captions = [caption if keep else "" for caption, keep in zip(batch["caption"], keep_text.tolist(), strict=True)]
        text_tokens = pipe.encode_text(captions).float()
        image_tokens = (
            pipe.encode_images(batch["first_frame"].to(device), text_tokens).float() * keep_image[:, None, None]
        )
        condition = frame_conditioning(latents[:, :, 0], num_frames)  # clean frame-0 latent + mask
        noise = torch.randn(latents.shape, generator=generator, device=device)
        timesteps = torch.randint(
            0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator, device=device
        )
        noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(torch.cat([noisy, condition], dim=1), timesteps, image_tokens, text_tokens).sample
    return F.mse_loss(prediction.float(), noise)
