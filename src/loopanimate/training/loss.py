"""The training objective (paper §3): epsilon-prediction MSE on the video latents of one micro-batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from loopanimate.models import frame_conditioning
from loopanimate.models.latents import encode_latents
from loopanimate.pipelines import LoopAnimatePipeline
from loopanimate.training.config import TrainConfig


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
        if "latents" in batch:
            latents = batch["latents"].to(device)  # (B, F, 4, h, w), from the cache
        else:
            pixels = batch["pixel_values"]  # (B, F, 3, H, W)
            latents = encode_latents(pipe.vae, pixels.flatten(0, 1)).unflatten(0, pixels.shape[:2])
        latents = latents.permute(0, 2, 1, 3, 4).float()  # (B, 4, F, h, w)
        batch_size, _, num_frames = latents.shape[:3]
        keep_image = torch.rand(batch_size, generator=generator, device=device) >= config.image_dropout
        keep_text = torch.rand(batch_size, generator=generator, device=device) >= config.text_dropout
        captions = [caption if keep else "" for caption, keep in zip(batch["caption"], keep_text.tolist(), strict=True)]
        text_tokens = pipe.encode_text(captions).float()
        image_tokens = pipe.encode_image_tokens(batch["first_frame"].to(device)).float() * keep_image[:, None, None]
        condition = frame_conditioning(latents[:, :, 0], num_frames)  # clean frame-0 latent + mask
        noise = torch.randn(latents.shape, generator=generator, device=device)
        timesteps = torch.randint(
            0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator, device=device
        )
        noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction = unet(torch.cat([noisy, condition], dim=1), timesteps, image_tokens, text_tokens).sample
    return F.mse_loss(prediction.float(), noise)
