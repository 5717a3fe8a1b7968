"""Peak memory and step time of one training step at 15, 21 and 35 frames: the paper's staged trainable set
(stage 1 at 15, stage 2 at 21, stage 3 at 35) against training all of the UNet, side by side in one run.

Each measurement runs in a fresh child process, so peaks do not mix: on CUDA the allocator's peak
(`max_memory_allocated`), on CPU the process's peak resident memory (ru_maxrss, reset through
/proc/self/clear_refs on Linux); both minus what was held before the first step (weights and inputs), so the number
is gradients + optimizer state + activations. The UNet is the tiny config, or with `--full-width` Stable Diffusion
1.5's (320/640/1280/1280 channels, 768-wide cross-attention, 8 motion heads); latents are `--latent` a side
(32: 256x256 pixels). `--frames 35 --stage-only` measures the paper's stage 3 alone (the whole full-width UNet with
AdamW needs about 21 GB before any activation, more than a 24 GiB machine holds with them).

    python bench/train_memory.py [--latent 32] [--device cpu] [--gradient-checkpointing] [--full-width]
        [--frames 35] [--stage-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from measure import peak_since, run_child, start_peak  # bench/measure.py: the script's folder is on the path

STAGES = {15: 1, 21: 2, 35: 3}


def child(frames: int, everything: bool, latent: int, device: str, checkpointing: bool, full_width: bool) -> dict:
    import torch
    import yaml

    from loopanimate.models.unet import LoopAnimateUNet
    from loopanimate.pipelines.tiny import TINY_CONTEXT_DIM, tiny_unet
    from loopanimate.training.trainable import select_trainable

    torch.manual_seed(0)
    width = 768 if full_width else TINY_CONTEXT_DIM
    unet = LoopAnimateUNet(cross_attention_dim=768, motion_num_attention_heads=8) if full_width else tiny_unet()
    unet = unet.to(device).train()
    stage_file = Path(__file__).resolve().parent.parent / "configs" / f"stage{STAGES[frames]}.yaml"
    patterns = [r"."] if everything else yaml.safe_load(stage_file.read_text())["trainable"]
    select_trainable(unet, patterns)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)
    sample = torch.randn(1, 9, frames, latent, latent, device=device)
    image_tokens = torch.randn(1, 17, width, device=device)
    text_tokens = torch.randn(1, 77, width, device=device)
    target = torch.randn(1, 4, frames, latent, latent, device=device)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(unet(sample, 500, image_tokens, text_tokens).sample, target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    # Memory from here on: gradients, optimizer state and activations; the weights and inputs are already there.
    before = start_peak(device)
    step()  # the first step also allocates the optimizer's state
    times = []
    for _ in range(1 if full_width else 3):
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = peak_since(device, before)
    return {"trained": sum(p.numel() for p in parameters), "peak_bytes": peak, "step_seconds": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--full-width", action="store_true")
    parser.add_argument("--frames", type=int, choices=sorted(STAGES), default=None, help="one frame count only")
    parser.add_argument("--stage-only", action="store_true", help="skip the whole-UNet runs")
    parser.add_argument("--child", nargs=2, metavar=("FRAMES", "SET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        frames, which = int(args.child[0]), args.child[1]
        print(json.dumps(child(frames, which == "all", args.latent, args.device, args.gradient_checkpointing,
                               args.full_width)))  # fmt: skip
        return

    kind = "allocator peak" if args.device.startswith("cuda") else "peak resident memory"
    steps = 2 if args.full_width else 4
    kind += f" above the weights and inputs, over {steps} steps (the first allocates the optimizer state)"
    print(f"device {args.device}, latents {args.latent}x{args.latent}, checkpointing {args.gradient_checkpointing}, "
          f"{'SD 1.5 widths' if args.full_width else 'tiny UNet'}")  # fmt: skip
    print(f"memory: {kind}")
    print("| frames | trained set | parameters | memory (MiB) | step (s) | memory ratio stage / all | time ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for frames, stage in STAGES.items():
        if args.frames and frames != args.frames:
            continue
        results = {}
        for which in ("stage",) if args.stage_only else ("stage", "all"):
            options = [str(frames), which, "--latent", str(args.latent), "--device", args.device]
            options += [flag for flag, on in (("--gradient-checkpointing", args.gradient_checkpointing),
                                               ("--full-width", args.full_width)) if on]  # fmt: skip
            results[which] = run_child(__file__, options)
        for which, label in (("stage", f"stage {stage}"), ("all", "whole UNet")):
            if which not in results:
                continue
            r = results[which]
            ratios = ""
            if which == "stage" and "all" in results:
                memory_ratio = r["peak_bytes"] / results["all"]["peak_bytes"]
                time_ratio = r["step_seconds"] / results["all"]["step_seconds"]
                ratios = f" {memory_ratio:.2f} | {time_ratio:.2f} |"
            else:
                ratios = " | |"
            memory = r["peak_bytes"] / 2**20
            print(f"| {frames} | {label} | {r['trained']:,} | {memory:.0f} | {r['step_seconds']:.2f} |{ratios}")


if __name__ == "__main__":
    main()
