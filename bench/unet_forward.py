"""35-frame forward time of LoopAnimateUNet as a ratio to a plain diffusers UNetMotionModel of the same config.

Both models hold the same weights and run alternately in one process, so machine load affects both alike.
The plain model gets the text context only (what AnimateDiff feeds it), repeated per frame outside the timed call;
LoopAnimateUNet repeats both of its contexts inside. Image and text contexts have the same token count, so the
attention work is equal and the ratio shows the cost of routing alone. Expected: <= 1.05 (routing must cost nothing).

    python bench/unet_forward.py [--frames 35] [--latent 32] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import UNetMotionModel

from loopanimate.pipelines.tiny import TINY_CONTEXT_DIM, tiny_unet


def timed(forward) -> float:
    start = time.perf_counter()
    forward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=35)
    parser.add_argument("--latent", type=int, default=32, help="latent side (pixels / 8)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    torch.manual_seed(0)
    ours = tiny_unet().eval()
    plain = UNetMotionModel.from_config({k: v for k, v in ours.config.items() if not k.startswith("_")}).eval()
    plain.load_state_dict(ours.state_dict())

    sample = torch.randn(1, 9, args.frames, args.latent, args.latent)
    image_tokens = torch.randn(1, 77, TINY_CONTEXT_DIM)
    text_tokens = torch.randn(1, 77, TINY_CONTEXT_DIM)
    text_per_frame = text_tokens.repeat_interleave(args.frames, dim=0)

    def run_ours():
        return ours(sample, 10, image_tokens, text_tokens).sample

    def run_plain():
        return plain(sample, 10, encoder_hidden_states=text_per_frame).sample

    with torch.inference_mode():
        for _ in range(2):  # warm-up: allocator and kernels
            run_ours(), run_plain()
        times_ours, times_plain = [], []
        for repeat in range(args.repeats):
            pair = [(times_ours, run_ours), (times_plain, run_plain)]
            for times, forward in pair if repeat % 2 == 0 else pair[::-1]:  # alternate who goes first
                times.append(timed(forward))

    ours_s, plain_s = statistics.median(times_ours), statistics.median(times_plain)
    parameters = sum(p.numel() for p in ours.parameters())
    print(
        f"config: tiny LoopAnimateUNet, {parameters:,} parameters, {args.frames} frames, "
        f"{args.latent}x{args.latent} latents, {torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"UNetMotionModel (plain): {plain_s * 1000:.0f} ms")
    print(f"LoopAnimateUNet (MITDF): {ours_s * 1000:.0f} ms")
    print(
        f"ratio LoopAnimateUNet / UNetMotionModel: {ours_s / plain_s:.3f} (medians), "
        f"{min(times_ours) / min(times_plain):.3f} (fastest runs)"
    )


if __name__ == "__main__":
    main()
