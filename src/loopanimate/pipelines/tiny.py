"""Tiny, randomly initialised pipeline components: for tests, demos and `init-model --tiny`. Nothing is downloaded."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKL
from tokenizers import pre_tokenizers
from transformers import (
    CLIPImageProcessorPil,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from loopanimate.models import LoopAnimateUNet
from loopanimate.pipelines.assemble import sd15_scheduler

# Width shared by the image tokens, the text tokens and the UNet's cross-attention.
TINY_CONTEXT_DIM = 32
TINY_IMAGE_SIZE = 32
TINY_LATENT_SIZE = 16  # default output: 16 * 8 = 128 pixels a side

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def byte_level_clip_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is the 256 byte symbols, alone and word-final: it encodes any text."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    symbols = [BOS, EOS, *alphabet, *(symbol + "</w>" for symbol in alphabet)]
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def tiny_unet() -> LoopAnimateUNet:
    """Two resolution levels: cross-attention in down block 0, the mid block and up block 1."""
    return LoopAnimateUNet(
        sample_size=TINY_LATENT_SIZE,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlockMotion", "DownBlockMotion"),
        up_block_types=("UpBlockMotion", "CrossAttnUpBlockMotion"),
        cross_attention_dim=TINY_CONTEXT_DIM,
        norm_num_groups=8,
        num_attention_heads=2,
        motion_num_attention_heads=2,
    )


def tiny_vae() -> AutoencoderKL:
    """Four levels, so latents are 1/8 of the image side as in Stable Diffusion; its scaling factor fits its own
    latents (SD's 0.18215 would leave a random VAE's latents far from unit variance, and training warns)."""
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=TINY_LATENT_SIZE * 8,
    )
    vae.register_to_config(scaling_factor=unit_variance_factor(vae))
    return vae


@torch.no_grad()
def unit_variance_factor(vae: AutoencoderKL) -> float:
    """The scaling factor that gives `vae`'s latents of `data synth`'s videos (the tiny recipe's data) unit variance."""
    from loopanimate.data.synthetic import drifting_sprites

    frames = np.stack(list(drifting_sprites(8, (96, 128), seed=0)))  # (F, H, W, 3) uint8
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return round(1.0 / float(vae.encode(pixels).latent_dist.mode().std()), 5)


def tiny_components(seed: int = 0) -> dict:
    """All seven components of LoopAnimatePipeline, tiny and random, reproducible from `seed`."""
    tokenizer = byte_level_clip_tokenizer()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TINY_CONTEXT_DIM,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=TINY_IMAGE_SIZE,
            patch_size=8,
            projection_dim=TINY_CONTEXT_DIM,
        )
    )
    feature_extractor = CLIPImageProcessorPil(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
    )
    scheduler = sd15_scheduler()
    models = {"vae": tiny_vae(), "unet": tiny_unet(), "image_encoder": image_encoder, "text_encoder": text_encoder}
    for model in models.values():
        model.eval()  # as from_pretrained returns them, so a saved and reloaded pipeline gives the same frames
    return {**models, "feature_extractor": feature_extractor, "tokenizer": tokenizer, "scheduler": scheduler}
