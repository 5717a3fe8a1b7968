"""PIA at full size: diffusers' PIAPipeline against ours on the same converted weights, seconds and peak memory.

Real weights from local files (`--sd` an SD 1.5 diffusers folder, `--pia` PIA's `pia.ckpt` or the
`PIA-condition-adapter` folder), or random ones of the same shapes for whatever is not given. On CUDA: 512x512,
25 steps, text guidance 7.5, float16; PIAPipeline at 16 frames (its 32 motion positions refuse 35), ours as PIA
(`none`, 16 frames) and with `cycle` and a salient mask at 16 and 35 frames (in 16-frame windows). `--fast`: a tiny
model on the CPU, 64x64, 2 steps, the same rows: the path works end to end.

    python bench/pia_full_size.py [--sd FOLDER --pia FILE_OR_FOLDER] [--device cuda] [--fast] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import PIL.Image
import torch
from diffusers import EulerDiscreteScheduler, MotionAdapter, PIAPipeline, UNet2DConditionModel, UNetMotionModel
from full_size import full_size_pipeline  # bench/full_size.py: the script's folder is on the path
from measure import peak_since, start_peak  # bench/measure.py

from loopanimate.evaluation.report import number_table
from loopanimate.models.convert import (
    PUBLISHED_MOTION_HEADS,
    SD15_UNET_CONFIG,
    SOURCE_CONDITIONING,
    load_motion_adapter,
    load_unet2d,
    to_loopanimate,
)
from loopanimate.pipelines import LoopAnimatePipeline
from loopanimate.pipelines.assemble import assemble_pipeline, sd15_scheduler
from loopanimate.pipelines.tiny import tiny_components
from loopanimate.reader import read_picture

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffee.png"
PROMPT = "the cup sways, steam rises"
FEW_STEPS = 4  # AnimateDiff-Lightning's 4-step model, run at its settings (issue 34)
TINY_UNET = {"sample_size": 8, "block_out_channels": (32, 64), "layers_per_block": 1,
             "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
             "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"), "cross_attention_dim": 32, "norm_num_groups": 8,
             "attention_head_dim": 2}  # fmt: skip


def random_sources(fast: bool) -> tuple[UNet2DConditionModel, MotionAdapter]:
    """SD 1.5's UNet and PIA's condition adapter in their shapes (diffusers' defaults are SD 1.5's), random weights;
    `fast`: tiny ones."""
    if fast:
        unet = UNet2DConditionModel(**TINY_UNET)
        adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=1, motion_norm_num_groups=8,
                                use_motion_mid_block=False, conv_in_channels=9)  # fmt: skip
    else:
        unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
        adapter = MotionAdapter(use_motion_mid_block=False, conv_in_channels=9)  # PIA's module has no mid block
    return unet.eval(), adapter.eval()


def pipelines(args: argparse.Namespace) -> tuple[PIAPipeline, LoopAnimatePipeline]:
    """The peer and ours on the same weights: real ones from --sd/--pia, random ones of the same shapes otherwise."""
    random_unet, random_adapter = random_sources(args.fast)
    unet2d = load_unet2d(args.sd) if args.sd else random_unet
    adapter = load_motion_adapter(args.pia, unet2d, PUBLISHED_MOTION_HEADS) if args.pia else random_adapter
    copy = MotionAdapter.from_config(adapter.config)
    copy.load_state_dict(adapter.state_dict())  # from_unet2d takes over an adapter's conv_in: one for each source
    source = UNetMotionModel.from_unet2d(unet2d, copy).eval()
    unet = to_loopanimate(source, *SOURCE_CONDITIONING[source.config.in_channels])[0].eval()
    if args.sd:
        ours = assemble_pipeline(unet, args.sd)
        ours.scheduler = sd15_scheduler()  # the peer's, not the SD folder's own (PNDM in SD 1.5's): like for like
    else:  # random VAE and text encoder of SD 1.5's shapes (bench/full_size.py), or tiny ones
        base = tiny_components() if args.fast else full_size_pipeline().components
        ours = LoopAnimatePipeline(vae=base["vae"], unet=unet, image_encoder=None, feature_extractor=None,
                                   text_encoder=base["text_encoder"], tokenizer=base["tokenizer"],
                                   scheduler=sd15_scheduler())  # fmt: skip
    peer = PIAPipeline(vae=ours.vae, text_encoder=ours.text_encoder, tokenizer=ours.tokenizer, unet=unet2d,
                       motion_adapter=adapter, scheduler=sd15_scheduler())  # fmt: skip
    for pipe in (peer, ours):
        pipe.set_progress_bar_config(disable=True)
        pipe.to(args.device, dtype=args.dtype)
    return peer, ours


def few_steps(pipe: LoopAnimatePipeline, work):
    """`work` with AnimateDiff-Lightning's sampler (Euler, trailing timesteps, linear betas; guidance 1 is the
    caller's): the cost of a few-step loop, whatever the weights."""
    kept = pipe.scheduler
    pipe.scheduler = EulerDiscreteScheduler.from_config(
        kept.config, timestep_spacing="trailing", beta_schedule="linear"
    )
    try:
        return work()
    finally:
        pipe.scheduler = kept


def measure(work, device: str) -> tuple[float, int]:
    """Seconds and peak bytes above the start of one call of `work`."""
    start = start_peak(device)
    began = time.perf_counter()
    work()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - began, peak_since(device, start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sd", default=None, help="SD 1.5 diffusers folder (VAE, text encoder, tokenizer, UNet)")
    parser.add_argument("--pia", default=None, help="pia.ckpt or PIA-condition-adapter folder (default: random)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fast", action="store_true", help="a tiny random model on the CPU: the path, not the speed")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.pia and not args.sd:
        parser.error("--pia needs --sd (the SD 1.5 folder it goes with)")
    args.device = "cpu" if args.fast else args.device
    args.dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    side, steps = (64, 2) if args.fast else (512, 25)
    peer, ours = pipelines(args)
    image = read_picture(EXAMPLE).resize((side, side))
    mask = PIL.Image.new("L", (side, side), 0)
    mask.paste(255, (side // 4, side // 8, 3 * side // 4, 7 * side // 8))  # the cup moves, the table stays
    common = {"num_inference_steps": steps, "height": side, "width": side, "output_type": "np"}

    def seeded() -> torch.Generator:
        return torch.Generator().manual_seed(0)

    runs = {
        "PIAPipeline, 16 frames": lambda: peer(image=image, prompt=PROMPT, num_frames=16, motion_scale=4,
                                               generator=seeded(), **common),
        "ours as PIA (none), 16 frames": lambda: ours(image, PROMPT, num_frames=16, loop_closure="none",
                                                      motion_scale=4, generator=seeded(), **common),
        "ours, cycle + mask, 16 frames": lambda: ours(image, PROMPT, num_frames=16, loop_closure="cycle", mask=mask,
                                                      motion_scale=1, generator=seeded(), **common),
        "ours, cycle + mask, 35 frames": lambda: ours(image, PROMPT, num_frames=35, loop_closure="cycle", mask=mask,
                                                      motion_scale=1, generator=seeded(), **common),
        f"ours, {FEW_STEPS} steps as Lightning samples, cycle + mask, 35 frames": lambda: few_steps(ours, lambda: ours(
            image, PROMPT, num_frames=35, loop_closure="cycle", mask=mask, motion_scale=1, generator=seeded(),
            guidance_scale_text=1.0, **{**common, "num_inference_steps": 2 if args.fast else FEW_STEPS})),
    }  # fmt: skip
    results = {}
    for label, work in runs.items():
        if args.device.startswith("cuda"):
            work()  # warm-up: kernels chosen and memory pooled outside the timing
        seconds, peak = measure(work, args.device)
        results[label] = {"seconds": round(seconds, 3), "peak_gib": round(peak / 2**30, 3)}
    weights = "real (" + str(args.pia) + ")" if args.pia else "random"
    print(f"{args.device}, {args.dtype}, {side}x{side}, {steps} steps, text guidance 7.5, {weights} weights")
    rows = [[label, f"{r['seconds']:.2f}", f"{r['peak_gib']:.2f}"] for label, r in results.items()]
    print(number_table(["run", "seconds", "peak GiB"], rows))
    if args.out:
        args.out.write_text(json.dumps({"device": args.device, "side": side, "steps": steps, "runs": results}))


if __name__ == "__main__":
    main()
