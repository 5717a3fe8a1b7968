"""Diffusion sampling time against diffusers' peers, and the cost of long loops.

1. Our pipeline against `PIAPipeline` (the same 9-channel layout) and `AnimateDiffPipeline` (4 channels), with the
   same UNet size and weights where the layouts agree, the same VAE, text encoder and scheduler: 35 frames, text
   guidance 7.5 (two branches each), alternating in one process, median of `--repeats` time ratios ours / peer.
   Ours runs with `loop_closure="none"` (35 frames denoised, as the peers) and with the shared down path on and off.
   Two sizes: the tiny test model at 64x64, and a wider one (3 levels, 64/128/256 channels) at 128x128.
2. A few-step loop's cost: the same weights sampled by diffusers' `LCMScheduler` at 4 steps (a consistency-distilled
   student, experiments/few_step.py) against the model's own DDIM at 25 steps, whole loops (encoding, denoising,
   decoding), 35 frames, `cycle`, text guidance 1 (a student samples unguided), alternating in one process: the
   median of `--repeats` time ratios, on the tiny and the wider model.
3. Long loops on the tiny trained model (`--model`, default runs/tiny-cpu/final): time of a 140-frame cycle over a
   35-frame one, tiled against overlapping windows, and their seam ratio, Loop-C, Motion and worst step (the largest
   step between consecutive frames, the wrap included, over the median step: a border that shows is > 1.5).

    python bench/sampling.py [--repeats 5] [--steps 10] [--model runs/tiny-cpu/final]
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time
from pathlib import Path

import torch
from diffusers import AnimateDiffPipeline, DDIMScheduler, LCMScheduler, PIAPipeline, UNetMotionModel

from loopanimate.evaluation import WeightFreeEmbedding, loop_consistency, motion, seam_ratio
from loopanimate.evaluation.pixel_metrics import frame_step
from loopanimate.models.unet import LoopAnimateUNet
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.pipelines.tiny import tiny_components
from loopanimate.reader import read_picture

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffee.png"
PROMPT, FRAMES, GUIDANCE = "the cup sways", 35, 7.5
TEACHER_STEPS, STUDENT_STEPS = 25, 4
WIDER = {"block_out_channels": (64, 128, 256), "layers_per_block": 1, "norm_num_groups": 16,
         "down_block_types": ("CrossAttnDownBlockMotion", "CrossAttnDownBlockMotion", "DownBlockMotion"),
         "up_block_types": ("UpBlockMotion", "CrossAttnUpBlockMotion", "CrossAttnUpBlockMotion"),
         "num_attention_heads": 4, "motion_num_attention_heads": 4}  # fmt: skip


def our_pipeline(wider: bool) -> LoopAnimatePipeline:
    components = tiny_components(seed=0)
    if wider:
        config = {**dict(components["unet"].config), **WIDER}
        components["unet"] = LoopAnimateUNet(**{k: v for k, v in config.items() if not k.startswith("_")}).eval()
    return LoopAnimatePipeline(**components)


def peer_unet(ours: LoopAnimateUNet, in_channels: int) -> UNetMotionModel:
    """diffusers' own UNetMotionModel of our config, with our weights wherever the shapes agree."""
    accepted = inspect.signature(UNetMotionModel.__init__).parameters  # ours adds keys (context_routing, ...)
    config = {k: v for k, v in ours.config.items() if k in accepted}
    peer = UNetMotionModel(**{**config, "in_channels": in_channels}).eval()
    state = {k: v for k, v in ours.state_dict().items() if peer.state_dict()[k].shape == v.shape}
    peer.load_state_dict(state, strict=False)
    return peer


def peers(pipe: LoopAnimatePipeline) -> dict:
    shared = {"vae": pipe.vae, "text_encoder": pipe.text_encoder, "tokenizer": pipe.tokenizer}
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    return {
        "PIAPipeline": PIAPipeline(**shared, unet=peer_unet(pipe.unet, 9), scheduler=scheduler),
        "AnimateDiffPipeline": AnimateDiffPipeline(
            **shared, unet=peer_unet(pipe.unet, 4), motion_adapter=None, scheduler=scheduler
        ),
    }


def seconds(work) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        work()
    return time.perf_counter() - start


def compare(wider: bool, side: int, steps: int, repeats: int, frames: int = FRAMES) -> None:
    pipe, image = our_pipeline(wider), read_picture(EXAMPLE)
    common = {"num_frames": frames, "num_inference_steps": steps, "height": side, "width": side, "output_type": "pt"}

    def ours(share: bool):
        return lambda: pipe(image, PROMPT, guidance_scale_text=GUIDANCE, loop_closure="none", share_down_path=share,
                            generator=torch.Generator().manual_seed(0), **common)  # fmt: skip

    runs = {
        "PIAPipeline": lambda peer: peer(image, PROMPT, guidance_scale=GUIDANCE, **common),
        "AnimateDiffPipeline": lambda peer: peer(PROMPT, guidance_scale=GUIDANCE, **common),
    }
    name = "wider (64/128/256)" if wider else "tiny (32/64)"
    parameters = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
    print(f"\n{name}, {parameters:.1f} M UNet parameters, {frames} frames at {side}x{side}, {steps} steps, "
          f"text guidance {GUIDANCE}; median of {repeats} alternating runs")  # fmt: skip
    print("| peer | ours / peer (shared down path) | ours / peer (switched off) |")
    print("| --- | ---: | ---: |")
    for peer_name, peer in peers(pipe).items():
        ratios = {True: [], False: []}
        for _ in range(repeats):
            for share in (True, False):
                ours_time = seconds(ours(share))
                ratios[share].append(ours_time / seconds(lambda p=peer, n=peer_name: runs[n](p)))
        print(f"| {peer_name} | {statistics.median(ratios[True]):.2f} | {statistics.median(ratios[False]):.2f} |")


def few_step_cost(wider: bool, side: int, repeats: int, frames: int = FRAMES) -> None:
    pipe, image = our_pipeline(wider), read_picture(EXAMPLE)
    samplers = {TEACHER_STEPS: pipe.scheduler, STUDENT_STEPS: LCMScheduler.from_config(pipe.scheduler.config)}

    def loop_seconds(steps: int) -> float:
        pipe.scheduler = samplers[steps]
        settings = {"num_frames": frames, "num_inference_steps": steps, "height": side, "width": side}
        generator = torch.Generator().manual_seed(0)
        return seconds(lambda: pipe(image, PROMPT, guidance_scale_text=1.0, output_type="pt", generator=generator,
                                    **settings))  # fmt: skip

    times = {steps: [] for steps in samplers}
    for _ in range(repeats):
        for steps in samplers:
            times[steps].append(loop_seconds(steps))
    ratio = statistics.median(s / t for s, t in zip(times[STUDENT_STEPS], times[TEACHER_STEPS], strict=True))
    name = "wider (64/128/256)" if wider else "tiny (32/64)"
    print(f"| {name}, {frames} frames at {side}x{side} | {statistics.median(times[TEACHER_STEPS]):.3f} | "
          f"{statistics.median(times[STUDENT_STEPS]):.3f} | {ratio:.3f} |")  # fmt: skip


def few_step_costs(repeats: int, fast: bool) -> None:
    print(f"\nwhole-loop cost, LCM {STUDENT_STEPS} steps over DDIM {TEACHER_STEPS}, cycle, guidance 1; median of "
          f"{repeats} alternating runs")  # fmt: skip
    print(f"| model | DDIM {TEACHER_STEPS} steps s | LCM {STUDENT_STEPS} steps s | LCM / DDIM |")
    print("| --- | ---: | ---: | ---: |")
    if fast:
        few_step_cost(wider=False, side=32, repeats=1, frames=8)
        return
    few_step_cost(wider=False, side=64, repeats=repeats)
    few_step_cost(wider=True, side=128, repeats=repeats)


def long_loops(model: str | None, steps: int, short_frames: int = 35) -> None:
    trained = model is not None and Path(model).is_dir()
    pipe = load_pipeline(model) if trained else our_pipeline(False)
    image, embed = read_picture(EXAMPLE), WeightFreeEmbedding()
    print(f"\nlong loops on {model if trained else 'the tiny random model'}, 64x64, {steps} steps")
    ratio = f"{4 * short_frames} / {short_frames} frames time"
    print(f"| windows | {ratio} | Seam | Loop-C | Motion | worst step / median |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for windows in ("tiled", "overlap"):

        def loop(frames: int, w=windows) -> torch.Tensor:
            return pipe(image, PROMPT, num_frames=frames, num_inference_steps=steps, guidance_scale_text=1.0,
                        height=64, width=64, output_type="pt", loop_windows=w,
                        generator=torch.Generator().manual_seed(0)).frames[0]  # fmt: skip

        short = statistics.median(seconds(lambda: loop(short_frames)) for _ in range(3))
        start = time.perf_counter()
        video = loop(4 * short_frames)
        long = time.perf_counter() - start
        shown = video[:-1]  # (139, 3, H, W): the closing frame repeats frame 0
        step_sizes = [frame_step(shown[i], shown[(i + 1) % len(shown)]) for i in range(len(shown))]
        worst = max(step_sizes) / statistics.median(step_sizes)
        print(f"| {windows} | {long / short:.2f} | {seam_ratio(video):.2f} | {loop_consistency(video, embed):.3f} | "
              f"{motion(video):.2f} | {worst:.2f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--model", default="runs/tiny-cpu/final")
    parser.add_argument("--fast", action="store_true", help="the tiny model, 8 frames, one step, one run (tests)")
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} torch threads")
    if args.fast:
        compare(wider=False, side=32, steps=1, repeats=1, frames=8)
        few_step_costs(repeats=1, fast=True)
        long_loops(None, steps=1, short_frames=6)
        return
    compare(wider=False, side=64, steps=args.steps, repeats=args.repeats)
    compare(wider=True, side=128, steps=args.steps, repeats=args.repeats)
    few_step_costs(args.repeats, fast=False)
    long_loops(args.model, args.steps)


if __name__ == "__main__":
    main()
