"""A full-size LoopAnimate pipeline, built from configs with random weights (nothing downloaded), timed end to end.

The Stable Diffusion 1.5-size UNet (with 36-position motion modules) and VAE, CLIP ViT-L/14-size text and image
encoders. On CUDA: a 35-frame 512x512 loop, 25 steps, text guidance 7.5, float32 against bfloat16 with the shared down
path and `--compile` (goals: <= 5 s, and <= 2.5 s with all three, on one H100). On a CPU: a one-step 256x256 smoke
run that shows the path works and what a step costs.

    python bench/full_size.py [--device cuda] [--frames 35]
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import AutoencoderKL
from transformers import (
    CLIPImageProcessorPil,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from loopanimate.models.unet import LoopAnimateUNet
from loopanimate.pipelines import LoopAnimatePipeline
from loopanimate.pipelines.assemble import sd15_scheduler
from loopanimate.pipelines.tiny import byte_level_clip_tokenizer
from loopanimate.reader import read_picture

EXAMPLE = "examples/coffee.png"


def full_size_pipeline() -> LoopAnimatePipeline:
    """SD 1.5's shapes (diffusers' defaults are SD 1.5's UNet and VAE), CLIP ViT-L/14's encoders, random weights."""
    tokenizer = byte_level_clip_tokenizer()
    text = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                          num_attention_heads=12, max_position_embeddings=77, projection_dim=768,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=224, patch_size=14, projection_dim=768)  # fmt: skip
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
    )
    return LoopAnimatePipeline(
        vae=vae.eval(),
        unet=LoopAnimateUNet(sample_size=64, cross_attention_dim=768, motion_num_attention_heads=8).eval(),
        image_encoder=CLIPVisionModelWithProjection(vision).eval(),
        feature_extractor=CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
        text_encoder=CLIPTextModel(text).eval(),
        tokenizer=tokenizer,
        scheduler=sd15_scheduler(),
    )


def run(pipe: LoopAnimatePipeline, frames: int, side: int, steps: int, share: bool, device: str) -> float:
    image = read_picture(EXAMPLE)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    pipe(image, "the cup sways", num_frames=frames, num_inference_steps=steps, guidance_scale_text=7.5, height=side,
         width=side, output_type="np", share_down_path=share, generator=torch.Generator().manual_seed(0))  # fmt: skip
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=35)
    args = parser.parse_args()
    pipe = full_size_pipeline()
    parameters = sum(p.numel() for p in pipe.unet.parameters()) / 1e9
    if not args.device.startswith("cuda"):
        seconds = run(pipe, args.frames, 256, 1, True, args.device)
        print(f"cpu smoke run: UNet {parameters:.2f} B parameters, {args.frames} frames at 256x256, 1 step, text "
              f"guidance 7.5, shared down path: {seconds:.1f} s (encoders, one step, VAE decoding)")  # fmt: skip
        return
    name = torch.cuda.get_device_name()
    pipe.to(args.device)
    for label, dtype, share, compiled in [
        ("float32, whole branches", torch.float32, False, False),
        ("float32, shared down path", torch.float32, True, False),
        ("bfloat16, shared down path", torch.bfloat16, True, False),
        ("bfloat16, shared down path, compiled", torch.bfloat16, True, True),
    ]:
        pipe.to(dtype=dtype)
        if compiled:
            pipe.unet.compile_blocks()
            run(pipe, args.frames, 512, 2, share, args.device)  # compile outside the timing
        seconds = min(run(pipe, args.frames, 512, 25, share, args.device) for _ in range(2))
        print(f"{name}: {label}: {args.frames} frames at 512x512, 25 steps, guidance 7.5: {seconds:.2f} s")


if __name__ == "__main__":
    main()
