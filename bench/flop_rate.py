"""How close one UNet forward comes to the machine's matrix-multiply rate (model FLOP utilisation on a CPU).

Builds the full Stable Diffusion 1.5-width LoopAnimateUNet from its config (320/640/1280/1280 channels, 768-wide
cross-attention, 8 motion heads; random weights, nothing downloaded), counts one forward's FLOPs with
`torch.utils.flop_counter.FlopCounterMode`, times it (median of `--repeats` after a warm-up), and divides; the same is
done for `torch.matmul` of `--matmul`-sized square matrices in the same process, and the ratio printed. On CUDA it also
prints the fraction of `--peak` (the card's dense bf16 peak, TFLOP/s) reached in bfloat16.

    python bench/flop_rate.py [--frames 16] [--latent 16] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from loopanimate.models.unet import LoopAnimateUNet

SD15 = {"sample_size": 64, "cross_attention_dim": 768, "motion_num_attention_heads": 8}


def timed(work, repeats: int, device: str) -> float:
    def once() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        work()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()  # warm-up: kernels chosen, memory allocated
    return statistics.median(once() for _ in range(repeats))


def matmul_rate(side: int, repeats: int, device: str, dtype: torch.dtype) -> float:
    a, b = (torch.randn(side, side, device=device, dtype=dtype) for _ in range(2))
    return 2 * side**3 / timed(lambda: a @ b, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--latent", type=int, default=16, help="latent side (pixels / 8)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--matmul", type=int, default=2048)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak", type=float, default=989.0, help="dense bf16 TFLOP/s of the card (H100 SXM: 989)")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    unet = LoopAnimateUNet(**SD15).to(args.device, dtype).eval()
    generator = torch.Generator(args.device).manual_seed(0)
    sample = torch.randn(
        1, 9, args.frames, args.latent, args.latent, device=args.device, dtype=dtype, generator=generator
    )
    image_tokens = torch.randn(1, 257, 768, device=args.device, dtype=dtype, generator=generator)  # ViT-L/14 patches
    text_tokens = torch.randn(1, 77, 768, device=args.device, dtype=dtype, generator=generator)

    def forward() -> None:
        with torch.no_grad():
            unet(sample, 500, image_tokens, text_tokens)

    with FlopCounterMode(display=False) as counter:
        forward()
    flops = counter.get_total_flops()
    seconds = timed(forward, args.repeats, args.device)
    model_rate = flops / seconds
    reference = matmul_rate(args.matmul, max(args.repeats, 5), args.device, dtype)
    parameters = sum(p.numel() for p in unet.parameters()) / 1e9
    print(f"{args.device}, {dtype}, {torch.get_num_threads()} threads; UNet {parameters:.2f} B parameters, "
          f"{args.frames} frames at {args.latent}x{args.latent} latents")  # fmt: skip
    print(f"one forward: {flops / 1e12:.2f} TFLOP in {seconds:.2f} s = {model_rate / 1e9:.1f} GFLOP/s")
    print(f"torch.matmul {args.matmul}^2: {reference / 1e9:.1f} GFLOP/s")
    print(f"forward / matmul rate: {model_rate / reference:.2f} (goal >= 0.85)")
    if args.device.startswith("cuda"):
        print(f"model FLOP utilisation: {model_rate / (args.peak * 1e12):.2f} of {args.peak:g} TFLOP/s (goal >= 0.4)")


if __name__ == "__main__":
    main()
