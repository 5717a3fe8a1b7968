"""Peak memory of the full-size pipeline with each memory lever on and off (issue 27), and what the levers cost in time.

bench/full_size.py's shapes (SD 1.5 UNet with 36-position motion modules, SD VAE, CLIP ViT-L/14-size encoders), random
weights, 35 frames, text guidance 7.5, one denoising step (the peak is one step's). Every configuration runs in a
fresh process (bench/measure.py), and two phases are measured apart: denoising (encoders and UNet) and VAE decoding,
each as its peak above the weights; the pipeline's peak is the weights plus the larger. The levers: `forward_chunking`,
`share_down_path`, `sequential_guidance`, `decode_chunk_size` (off: every frame in one decode), half precision
(weights and activations) and, on CUDA, `enable_model_cpu_offload`.

On CUDA (`--device cuda`): torch.cuda.max_memory_allocated at 512x512, float32 and bfloat16, offload on and off.
On CPU (always): bfloat16, peak resident memory: every lever at 192 pixels a side, all off and the defaults at 128,
the defaults at 256 and at 192 with 12 and 24 frames; a straight line through the peaks against pixels x frames
predicts 512x512 x 35 frames, printed as a prediction. Times: every configuration's second denoising step, taking
turns in one process at the smallest size (a busy machine slows them alike), as ratios to all off.
`--fast`: the tiny pipeline at two small sizes, in this process: a smoke run of the whole script for the test suite.

    python bench/memory.py [--device cuda] [--out memory.json] [--fast]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from measure import peak_since, run_child, start_peak  # bench/measure.py: the script's folder is on the path

PROMPT = "the cup sways"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffee.png"
GOAL_BYTES = 8e9  # issue 27: 512x512, 35 frames, guided, default levers on an 8 GB card
CARDS = {"8 GB": 8e9, "12 GB": 12e9, "16 GB": 16e9, "24 GB": 24e9, "48 GB": 48e9, "80 GB": 80e9}
# Lever settings: all off, then one lever on at a time, then the pipeline's defaults (decode_chunk_size 0: all frames).
ALL_OFF = {"forward_chunking": False, "share_down_path": False, "sequential_guidance": False, "decode_chunk_size": 0}
DEFAULTS = {"forward_chunking": True, "share_down_path": True, "sequential_guidance": True, "decode_chunk_size": 4}
CONFIGS = {
    "all off": {},
    "forward chunking": {"forward_chunking": True},
    "shared down path": {"share_down_path": True},
    "sequential guidance": {"sequential_guidance": True},
    "decode in chunks of 4": {"decode_chunk_size": 4},
    "defaults": DEFAULTS,
}
# Sizes of the pixel fit beside the lever size (192): all off decodes 35 frames at once, too slow for 256 on 2 cores.
MORE_SIDES = {128: ("all off", "defaults"), 256: ("defaults",)}
DECODE_AS_ALL_OFF = ("forward chunking", "shared down path", "sequential guidance")  # decoded as all off: measured once


def full_size_pipeline(dtype):
    """bench/full_size.py's pipeline, built on the meta device and filled with bfloat16 noise: seconds, not a minute,
    and the float32 weights never exist on a CPU run (values do not change memory or time)."""
    import ctypes

    import torch
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from full_size import full_size_pipeline as build  # bench/full_size.py

    with init_empty_weights():
        pipe = build()
    pool = (torch.randn(2**22, generator=torch.Generator().manual_seed(0)) * 0.02).to(dtype)
    for model in (pipe.vae, pipe.unet, pipe.image_encoder, pipe.text_encoder):
        for name, parameter in list(model.named_parameters()):
            values = torch.empty(parameter.numel(), dtype=dtype)
            for start in range(0, values.numel(), pool.numel()):  # tiled in place: no temporaries left in the heap
                piece = values[start : start + pool.numel()]
                piece.copy_(pool[: piece.numel()])
            set_module_tensor_to_device(model, name, "cpu", value=values.view(parameter.shape), dtype=dtype)
    pipe.to(dtype=dtype)  # the buffers (motion position tables) too
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the system, so the call's peak is not hidden in it
    return pipe


def weight_bytes(pipe) -> dict[str, int]:
    """Bytes of parameters and buffers: the UNet, the VAE, and both encoders together."""
    groups = {"unet": [pipe.unet], "vae": [pipe.vae], "encoders": [pipe.text_encoder, pipe.image_encoder]}
    return {
        name: sum(t.numel() * t.element_size() for model in models for t in (*model.parameters(), *model.buffers()))
        for name, models in groups.items()
    }


def build(setting: dict):
    """The full-size or the tiny pipeline, in `setting`'s dtype, on its device or offloaded to the CPU."""
    import torch

    from loopanimate.pipelines import LoopAnimatePipeline
    from loopanimate.pipelines.tiny import tiny_components

    dtype = getattr(torch, setting["dtype"])
    pipe = (
        full_size_pipeline(dtype) if setting["full_size"] else LoopAnimatePipeline(**tiny_components()).to(dtype=dtype)
    )
    if setting["offload"]:
        pipe.enable_model_cpu_offload(device=setting["device"])
    else:
        pipe.to(setting["device"])
    return pipe


def levers_of(config: str, frames: int) -> dict:
    levers = {**ALL_OFF, **CONFIGS[config]}
    return {**levers, "decode_chunk_size": levers["decode_chunk_size"] or frames}


def interleaved_times(setting: dict, repeats: int = 2) -> dict:
    """Seconds of a denoising step (the second of two) per configuration and of decoding all frames at once against
    in chunks of 4, configurations taking turns in one process so that a busy machine slows them alike; medians."""
    import torch

    from loopanimate.reader import read_picture

    pipe, image, device = build(setting), read_picture(EXAMPLE), setting["device"]
    steps, decodes = {config: [] for config in CONFIGS}, {"all at once": [], "chunks of 4": []}

    def now() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    for _ in range(repeats):
        for config in CONFIGS:
            marks = []
            pipe(image, PROMPT, num_frames=setting["frames"], num_inference_steps=2, guidance_scale_text=7.5,
                 height=setting["side"], width=setting["side"], output_type="latent",
                 callback=lambda step, steps, marks=marks: marks.append(now()),
                 **levers_of(config, setting["frames"]))  # fmt: skip
            steps[config].append(marks[1] - marks[0])
        latents = torch.randn(1, 4, setting["frames"] - 1, setting["side"] // 8, setting["side"] // 8)
        latents = latents.to(device=device, dtype=pipe.vae.dtype)
        for label, chunk in (("all at once", latents.shape[2]), ("chunks of 4", 4)):
            start = now()
            with torch.no_grad():
                pipe.decode_latents(latents, chunk)
            decodes[label].append(now() - start)
    return {"steps": {k: float(np.median(v)) for k, v in steps.items()},
            "decodes": {k: float(np.median(v)) for k, v in decodes.items()}}  # fmt: skip


def child(setting: dict) -> dict:
    """One pipeline call with `setting`'s levers; peaks above the weights and seconds, per phase."""
    import torch

    from loopanimate.reader import read_picture

    device = setting["device"]
    if setting.get("times"):
        return interleaved_times(setting)
    pipe = build(setting)
    levers = levers_of(setting["config"], setting["frames"])
    image = read_picture(EXAMPLE)
    marks = {}

    def after_step(step: int, steps: int) -> None:
        marks[step] = time.perf_counter()
        if step == steps:  # denoising is over: its peak, then a fresh peak for decoding
            marks["denoise"] = peak_since(device, marks["weights"])
            marks["decode_start"] = start_peak(device)

    marks["weights"] = start_peak(device)
    start = marks[0] = time.perf_counter()
    pipe(image, PROMPT, num_frames=setting["frames"], num_inference_steps=setting["steps"], guidance_scale_text=7.5,
         height=setting["side"], width=setting["side"], output_type="latent" if setting["skip_decode"] else "np",
         callback=after_step, generator=torch.Generator().manual_seed(0), **levers)  # fmt: skip
    end = time.perf_counter()
    decode = marks["decode_start"] - marks["weights"] + peak_since(device, marks["decode_start"])
    return {
        **setting,
        "weights_resident": marks["weights"],  # CUDA: allocated on the device; CPU: the process's resident size
        "denoise_bytes": marks["denoise"],
        "decode_bytes": None if setting["skip_decode"] else decode,
        "denoise_seconds": marks[setting["steps"]] - start,
        "decode_seconds": None if setting["skip_decode"] else end - marks[setting["steps"]],
        "weights": weight_bytes(pipe),
    }


def plan(device: str, fast: bool) -> list[dict]:
    """The runs: every configuration at the lever sizes, all off and the defaults at a larger size (the pixel fit),
    the defaults at fewer frames (the frame fit; their decoding, frames at a time, is the 35-frame run's)."""
    base = {"device": device, "dtype": "bfloat16", "steps": 1, "offload": False, "full_size": not fast}
    base["frames"] = 8 if fast else 35
    if device.startswith("cuda"):
        runs = [{**base, "config": config, "side": 512} for config in CONFIGS]
        runs += [{**base, "config": config, "side": 512, "offload": True} for config in ("all off", "defaults")]
        runs += [{**base, "config": "all off", "side": 512, "dtype": "float32"}]
        return [{**run, "skip_decode": run["config"] in DECODE_AS_ALL_OFF} for run in runs]
    lever_side, more, fewer_frames = (32, {64: ("all off", "defaults")}, (4,)) if fast else (192, MORE_SIDES, (12, 24))
    runs = [{**base, "config": config, "side": lever_side} for config in CONFIGS]
    runs += [{**base, "config": config, "side": side} for side, configs in more.items() for config in configs]
    runs = [{**run, "skip_decode": run["config"] in DECODE_AS_ALL_OFF} for run in runs]
    series = {**base, "config": "defaults", "side": lever_side, "skip_decode": True}
    return runs + [{**series, "frames": frames} for frames in fewer_frames]


def fill_decode(results: list[dict]) -> None:
    """Runs that decode as another run did take its decoding: lever runs all off's, the frame series the defaults'."""
    for r in results:
        if r["skip_decode"]:
            source = "all off" if r["config"] in DECODE_AS_ALL_OFF else r["config"]
            same = ("side", "dtype", "offload") if source == "defaults" else ("side", "frames", "dtype", "offload")
            match = next(b for b in results if b["config"] == source and not b["skip_decode"]
                         and all(b[k] == r[k] for k in same))  # fmt: skip
            r["decode_bytes"], r["decode_seconds"] = match["decode_bytes"], match["decode_seconds"]


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of y against x."""
    x, y = np.array(points, dtype=float).T
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def predict(results: list[dict], side: int, frames: int) -> dict:
    """512x512 from the CPU runs: each phase's peak above the weights on a line in pixels x frames (denoising) or
    pixels x frames decoded at once (decoding), plus the weights a GPU would hold, in bfloat16; float32 doubles all."""
    cpu = [r for r in results if r["dtype"] == "bfloat16" and not r["offload"]]
    weights = cpu[0]["weights"]
    frames_decoded = {"all off": lambda r: r["frames"], "defaults": lambda r: DEFAULTS["decode_chunk_size"]}
    prediction = {"side": side, "frames": frames, "kind": "predicted from CPU peaks", "fits": {}}
    for config in ("all off", "defaults"):
        runs = [r for r in cpu if r["config"] == config]
        decoded = frames_decoded[config]
        denoise = fit_line([(r["side"] ** 2 * r["frames"], r["denoise_bytes"]) for r in runs])
        decode = fit_line([(r["side"] ** 2 * decoded(r), r["decode_bytes"]) for r in runs if not r["skip_decode"]])
        denoise_bytes = denoise[0] + denoise[1] * side**2 * frames
        decode_bytes = decode[0] + decode[1] * side**2 * decoded({"frames": frames})
        everything = sum(weights.values())
        whole = everything + max(denoise_bytes, decode_bytes)
        # Offload keeps the UNet and the VAE (encoded first, moved off only at the end) while denoising, the VAE alone
        # while decoding.
        offload = max(weights["unet"] + weights["vae"] + denoise_bytes, weights["vae"] + decode_bytes)
        prediction["fits"][config] = {
            "denoise_per_pixel_frame": denoise[1],
            "decode_per_pixel_frame": decode[1],
            "denoise_bytes": denoise_bytes,
            "decode_bytes": decode_bytes,
            "bfloat16": whole,
            "bfloat16 + offload": offload,
            "float32": 2 * whole,
            "float32 + offload": 2 * offload,
        }
    return prediction


def slopes(results: list[dict]) -> dict:
    """The defaults' denoising peak per pixel-frame, fitted along frames (at the side with a frame series) and along
    pixels (at the most frames): if the two agree, one line in pixels x frames is a fair model of both."""
    runs = [r for r in results if r["config"] == "defaults"]
    most = max(r["frames"] for r in runs)
    side = next(r["side"] for r in runs if r["frames"] != most)
    by_frames = [(r["side"] ** 2 * r["frames"], r["denoise_bytes"]) for r in runs if r["side"] == side]
    by_pixels = [(r["side"] ** 2 * r["frames"], r["denoise_bytes"]) for r in runs if r["frames"] == most]
    return {"frame_series_side": side, "by_frames": fit_line(by_frames)[1], "by_pixels": fit_line(by_pixels)[1]}


def gib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**30:.2f}"


def table(results: list[dict]) -> list[str]:
    """One row a run: peaks above the weights per phase, the peak with them (resident or allocated), seconds."""
    kind = "measured on CUDA (allocated)" if results[0]["device"].startswith("cuda") else "measured on CPU (peak RSS)"
    header = ("levers", "dtype", "offload", "size", "frames", "denoise GiB", "decode GiB", "peak GiB", "denoise s",
              "decode s")  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "| --- | --- | --- |" + " ---: |" * (len(header) - 3)]
    for r in results:
        peak = r["weights_resident"] + max(r["denoise_bytes"], r["decode_bytes"])
        lines.append(f"| {r['config']} | {r['dtype']} | {'on' if r['offload'] else 'off'} | {r['side']}² | "
                     f"{r['frames']} | {gib(r['denoise_bytes'])} | {gib(r['decode_bytes'])} | {gib(peak)} | "
                     f"{r['denoise_seconds']:.1f} | {r['decode_seconds']:.1f} |")  # fmt: skip
    return [f"Kind: {kind}. denoise, decode: peaks above the weights; peak: with what was held before the call (CPU: "
            "weights and the process itself).", "", *lines]  # fmt: skip


def fits(prediction: dict) -> list[str]:
    lines = [f"Predicted at {prediction['side']}² x {prediction['frames']} frames, text-guided ({prediction['kind']}; "
             f"goal <= {GOAL_BYTES / 1e9:.0f} GB with the defaults):", "",
             "| levers | GB | smallest card that holds it |", "| --- | ---: | --- |"]  # fmt: skip
    for config, fit in prediction["fits"].items():
        for precision in ("float32", "float32 + offload", "bfloat16", "bfloat16 + offload"):
            card = next((name for name, size in CARDS.items() if fit[precision] <= size), "none listed")
            lines.append(f"| {config}, {precision} | {fit[precision] / 1e9:.1f} | {card} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--fast", action="store_true", help="the tiny pipeline, in this process (a smoke run)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    results = []
    for setting in plan(args.device, args.fast):
        results.append(child(setting) if args.fast else run_child(__file__, [json.dumps(setting)]))
        r = results[-1]
        print(f"# {r['config']}, {r['side']}², {r['frames']} frames: denoise {gib(r['denoise_bytes'])} GiB, "
              f"decode {gib(r['decode_bytes'])} GiB, {r['denoise_seconds']:.1f} s", flush=True)  # fmt: skip
    fill_decode(results)
    output = {"results": results}
    print("\n".join(table(results)))
    timed = {**min(plan(args.device, args.fast), key=lambda run: run["side"]), "frames": 35 if not args.fast else 8}
    timed["times"] = True
    output["times"] = times = interleaved_times(timed) if args.fast else run_child(__file__, [json.dumps(timed)])
    print(f"\nTimes at {timed['side']}², {timed['frames']} frames, configurations taking turns in one process "
          "(medians of 2):\n\n| levers | step s | step / all off |\n| --- | ---: | ---: |")  # fmt: skip
    for config, seconds in times["steps"].items():
        print(f"| {config} | {seconds:.2f} | {seconds / times['steps']['all off']:.2f} |")
    once, chunks = times["decodes"]["all at once"], times["decodes"]["chunks of 4"]
    print(
        f"\nDecoding {timed['frames'] - 1} frames: all at once {once:.2f} s, in chunks of 4 {chunks:.2f} s "
        f"({chunks / once:.2f})"
    )
    if not args.device.startswith("cuda"):
        output["prediction"] = predict(results, 512, 35)
        output["slopes"] = slopes(results)
        print(f"\nThe defaults' denoising peak, bytes per pixel-frame: {output['slopes']}\n")
        print("\n".join(fits(output["prediction"])))
    if args.out:
        with open(args.out, "w") as file:
            json.dump(output, file, indent=1)


if __name__ == "__main__":
    main()
