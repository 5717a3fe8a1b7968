"""`loopanimate` command line: thin wrappers that parse, call the library, show progress and map errors."""

from __future__ import annotations

import argparse
import functools
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from loopanimate.animate import (
    DIFFUSION_DEFAULTS,
    DTYPES,
    ENGINES,
    MOTION_MAX_SIDE,
    LoopRequest,
    make_loop,
    save_loop,
    save_mask,
)
from loopanimate.batch import FORMATS
from loopanimate.data.alss import MODES
from loopanimate.errors import InvalidArgumentError, LoopAnimateError
from loopanimate.pipelines.loop_closure import LOOP_CLOSURES, LOOP_WINDOWS

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are a single line (no usage dump), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if missing := re.fullmatch(r"argument (--[\w-]+): expected one argument", message):
            # argparse takes a value such as "-5,10" for an option: it must be joined to its flag
            message += f" (a value that starts with '-' is given as {missing.group(1)}=VALUE)"
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """As argparse's, but an unknown option points at the subcommand's help, where the options are."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = " ".join(filter(None, (getattr(parsed, "command", None), getattr(parsed, "data_command", None))))
            prog = f"{self.prog} {command}".strip()
            self.exit(EXIT_USAGE, f"error: unrecognized arguments: {' '.join(extras)} (see `{prog} --help`)\n")
        return parsed


def parse_size(text: str) -> tuple[int, int]:
    """The library's size syntax (N or WIDTHxHEIGHT), as an argparse type."""
    from loopanimate.animate import parse_size as library_parse_size

    try:
        return library_parse_size(text, presets=False)
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_video_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT of a synthetic video that H.264 can encode."""
    from loopanimate.data.synthetic import check_video_size

    try:
        return check_video_size(parse_size(text))
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def video_frames(text: str) -> int:
    """Frames of a synthetic video: 2 to 10,000 (a minute at 24 fps is 1,440; more is a typo that fills memory)."""
    from loopanimate.checks import check_int

    try:
        return check_int("video-frames", int(text), 2, 10_000)
    except (ValueError, InvalidArgumentError):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give a whole number from 2 to 10000") from None


def parse_box(text: str):
    """A loop's size: N, WIDTHxHEIGHT or a preset name (phone, desktop, 4k)."""
    from loopanimate.animate import parse_size as library_parse_size

    try:
        return library_parse_size(text)
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def seed(text: str) -> int:
    """A seed as the library takes it: a whole number from 0 to MAX_SEED."""
    from loopanimate.animate import MAX_SEED
    from loopanimate.checks import check_int

    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: give a whole number") from None
    try:
        return check_int("seed", number, 0, MAX_SEED)
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive(text: str) -> int:
    """A whole number of at least 1, checked as the library checks it."""
    from loopanimate.checks import check_int

    try:
        return check_int("value", int(text), 1)
    except (ValueError, InvalidArgumentError):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: give a whole number, at least 1") from None


def quiet_libraries() -> None:
    """The CLI draws its own progress and says what failed in one line; silence the loaders' bars, notices and their
    own error logs (diffusers logs "An error occurred while trying to fetch ..." before it raises)."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity(diffusers.utils.logging.CRITICAL)
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# What a model folder of ours holds: `init-model` and `convert` replace a folder only if it holds nothing else.
MODEL_FOLDER_ENTRIES = frozenset(
    ("model_index.json", "conversion_report.json", "unet", "vae", "text_encoder", "tokenizer", "image_encoder")
).union(("feature_extractor", "scheduler", "sampling.json"))


def check_model_output(path: str, inputs: tuple = ()) -> Path:
    """A model folder to write: new, empty, or one of ours holding nothing but what we write there."""
    from loopanimate.atomic import check_destination, check_owned_folder

    out = check_destination(path, inputs, "model folder", make_parents=True)
    return check_owned_folder(out, lambda entry: entry.name in MODEL_FOLDER_ENTRIES, "model folder")


def cmd_init_model(args: argparse.Namespace) -> int:
    out = check_model_output(args.out)  # before torch loads
    from loopanimate.atomic import atomic_dir
    from loopanimate.pipelines import LoopAnimatePipeline
    from loopanimate.pipelines.tiny import tiny_components

    quiet_libraries()
    pipe = LoopAnimatePipeline(**tiny_components(seed=args.seed))
    with atomic_dir(out) as tmp:
        pipe.save_pretrained(tmp)
    parameters = sum(p.numel() for p in pipe.unet.parameters())
    print(f"wrote a tiny random LoopAnimate model ({parameters:,} UNet parameters) to {out}")
    return 0


def loop_request(args: argparse.Namespace, image: str = "") -> LoopRequest:
    """The loop options as the library's request; `None` leaves a diffusion-only setting unset."""
    return LoopRequest(
        image=image,
        prompt=args.prompt,
        engine=args.engine,
        model=args.model,
        mask=getattr(args, "mask", None),
        num_frames=args.frames,
        seed=args.seed,
        size=args.size,
        crop=args.crop,
        fps=args.fps,
        motion_strength=args.motion,
        interpolate=args.interpolate,
        arrows=getattr(args, "arrows", None),
        anchors=getattr(args, "anchors", None),
        mask_model=getattr(args, "mask_model", None),
        steps=args.steps,
        guidance_text=args.guidance_text,
        guidance_image=args.guidance_image,
        negative_prompt=args.negative_prompt,
        loop_closure=args.loop_closure,
        loop_windows=args.loop_windows,
        motion_scale=args.motion_scale,
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
        compile=args.compile,
    )


def cmd_animate(args: argparse.Namespace) -> int:
    from loopanimate.animate import default_output, request_inputs
    from loopanimate.export import ALPHA_FORMATS, check_file_output, check_output_path

    request = loop_request(args, args.image)
    engine = request.check()  # every setting, before any work
    inputs = request_inputs(request)
    args.output = args.output or default_output(args.image, "webm" if args.transparent else "mp4")
    fmt = check_output_path(args.output, inputs)
    if args.transparent and fmt not in ALPHA_FORMATS:
        raise InvalidArgumentError(f"--transparent needs a .webm, .png or .webp output, not {args.output}")
    if args.transparent and engine == "diffusion" and request.mask is None:
        raise InvalidArgumentError("--transparent needs a mask with diffusion: give --mask PATH or --mask auto")
    if args.save_mask:
        check_file_output(args.save_mask, (".png",), "the mask", (*inputs, args.output))
        if engine == "diffusion" and request.mask is None:
            raise InvalidArgumentError("--save-mask needs a mask with diffusion: give --mask PATH or --mask auto")
    from tqdm import tqdm

    if engine == "diffusion":
        quiet_libraries()
        with tqdm(total=request.setting("steps"), desc="denoising", unit="step", disable=None) as bar:
            loop = make_loop(request, progress=lambda step, total: bar.update(1))
    else:
        loop = make_loop(request)
    with tqdm(total=len(loop.frames) - 1, desc="frames", unit="frame", disable=None, leave=False) as bar:
        written = save_loop(loop, args.output, inputs, args.transparent, lambda done, total: bar.update(1))
    if args.save_mask:
        save_mask(loop, args.save_mask, (*inputs, args.output))
    for note in loop.notes + written.notes:
        print(note, file=sys.stderr)
    between = f", {args.interpolate} between each pair" if args.interpolate else ""
    print(
        f"wrote {args.output}: {written.frames} frame{'s' * (written.frames != 1)} at {written.fps:g} fps "
        f"({loop.generated} generated{between}, "
        "the repeated seam frame dropped)"
    )
    return 0


def cmd_animate_batch(args: argparse.Namespace) -> int:
    from loopanimate.atomic import check_destination
    from loopanimate.batch import read_rows, run_batch

    template = loop_request(args)
    engine = template.check()  # the defaults, before any row runs
    check_destination(args.output, () if Path(args.input).is_dir() else (args.input,), "output folder")
    rows = read_rows(args.input, args.output, args.format)
    if engine == "diffusion":
        quiet_libraries()
    from tqdm import tqdm

    main_process = os.environ.get("RANK", "0") == "0"
    with tqdm(total=len(rows), desc="loops", unit="loop", disable=not main_process or None) as bar:
        counts = run_batch(
            rows,
            template,
            args.output,
            batch_size=args.batch_size,
            evaluate=args.evaluate,
            progress=lambda done: bar.update(min(done, bar.total - bar.n)),
        )
    if counts is None:  # not the main process: it reports nothing
        return 0
    if counts["failed"]:
        from loopanimate.batch import RUN_LOG
        from loopanimate.jsonl import WHOLE, iter_jsonl

        log = iter_jsonl(Path(args.output) / RUN_LOG, "row", "", {"row": WHOLE})
        failed = [record for record in log if record["status"] == "failed"]
        for record in failed[:10]:
            print(f"row {record['row']} ({record['input']}): {record['error']}", file=sys.stderr)  # as in run.jsonl
        if len(failed) > 10:
            print(f"... and {len(failed) - 10} more failed rows", file=sys.stderr)
    print(
        f"{len(rows)} rows: {counts['done']} done, {counts['skipped']} skipped (made before), "
        f"{counts['failed']} failed; see {Path(args.output) / 'run.jsonl'}"
    )
    return 1 if counts["failed"] else 0


def check_port_free(host: str, port: int) -> None:
    """Fail in one line, before gradio starts, when another program holds `host:port`."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise InvalidArgumentError(
            f"cannot listen on {host}:{port} ({error.strerror}): another program uses it; give --port N"
        ) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from loopanimate.checks import check_int
    from loopanimate.pipelines.loading import check_model_dir

    check_int("port", args.port, 1, 65535)
    check_port_free(args.host, args.port)
    for model in args.model:
        check_model_dir(model)  # before the server starts, not at the first request
    try:
        from loopanimate.app.web import serve
    except ImportError:
        raise InvalidArgumentError("the web app needs gradio: pip install 'loopanimate[app]'") from None
    if args.model:
        quiet_libraries()
    print(f"LoopAnimate on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    serve(args.model, host=args.host, port=args.port)
    return 0


def cmd_contact_sheet(args: argparse.Namespace) -> int:
    from loopanimate.atomic import atomic_file
    from loopanimate.contact_sheet import check_layout, contact_sheet
    from loopanimate.export import check_file_output, our_png_info, read_video

    check_layout(args.columns, args.every, args.width)
    out = check_file_output(args.output, (".png",), "contact sheets", (args.video,))
    frames, _ = read_video(args.video)
    sheet = contact_sheet(frames, columns=args.columns, every=args.every, thumb_width=args.width)
    with atomic_file(out) as tmp:
        sheet.save(tmp, format="PNG", pnginfo=our_png_info())
    print(f"wrote {out}: {len(range(0, len(frames), args.every))} of {len(frames)} frames")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from loopanimate.animate import default_device
    from loopanimate.atomic import check_destination
    from loopanimate.checks import check_device
    from loopanimate.evaluation import ClipEmbedding, WeightFreeEmbedding
    from loopanimate.evaluation.report import check_report_folder, find_cases, markdown_table, score, write_report

    if not Path(args.source).exists():
        raise InvalidArgumentError(f"nothing to evaluate at {args.source}: give a folder of videos or a .jsonl file")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise InvalidArgumentError(f"report folder {args.output} is a file: give a folder name")
    check_destination(args.output, (args.source,), "report folder")
    check_report_folder(args.output)
    if args.device:
        check_device(args.device)
    cases = find_cases(args.source)
    if not cases:
        raise InvalidArgumentError(
            f"no videos found in {args.source}: give GIF, MP4 or WebP files or PNG-frame folders"
        )
    if args.clip:
        quiet_libraries()
    embed = ClipEmbedding(args.clip, device=args.device or default_device()) if args.clip else WeightFreeEmbedding()
    rows = [score(case, embed) for case in cases]
    paths = write_report(rows, args.output, embed.name)
    print(markdown_table(rows, embed.name))
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from loopanimate.data.check import check_videos
    from loopanimate.data.manifest import iter_manifest

    report = check_videos(iter_manifest(args.manifest, args.root), args.frames, args.mode)
    counts, seconds = report["counts"], report["seconds"]
    print(f"{sum(counts.values())} videos: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    for shard, shard_counts in report["shards"].items():
        print(f"  {shard}: " + ", ".join(f"{n} {status}" for status, n in shard_counts.items()))
    print(f"a {args.frames}-frame {args.mode} clip needs at least {report['frames_needed']} frames")
    print(f"duration (s): min {seconds['min']:.1f}, median {seconds['median']:.1f}, max {seconds['max']:.1f}")
    print("resolutions: " + (", ".join(f"{size} ({n})" for size, n in report["resolutions"].items()) or "none"))
    for status, paths in report["problems"].items():
        for path in paths[:10]:
            print(f"  {status}: {path}")
        if len(paths) > 10:
            print(f"  ... and {len(paths) - 10} more {status}")
    return 0


def check_clip_size(size: tuple[int, int]) -> None:
    """A clip's size (height, width) for preview and cache: each side from 8 to 2048, as training's resolution."""
    from loopanimate.checks import check_int

    for side in size:
        check_int("size", side, 8, 2048)


def cmd_data_preview(args: argparse.Namespace) -> int:
    from loopanimate.animate import MAX_FPS, MIN_FPS
    from loopanimate.checks import check_number
    from loopanimate.data.manifest import iter_manifest
    from loopanimate.data.preview import preview_clips
    from loopanimate.export import check_output_path, write_video

    check_number("fps", args.fps, MIN_FPS, MAX_FPS)
    check_clip_size(args.size)
    check_output_path(args.output, (args.manifest, args.root))
    try:
        frames = preview_clips(
            iter_manifest(args.manifest, args.root), args.videos, args.frames, args.size, args.mode, args.seed
        )
    except ValueError as error:
        raise InvalidArgumentError(str(error)) from None
    write_video(frames, args.output, fps=args.fps, closed_loop=False, inputs=(args.manifest, args.root))
    print(f"wrote {args.output}: {frames.shape[0]} frames, {frames.shape[2] // args.size[1]} videos side by side")
    return 0


def cmd_data_cache(args: argparse.Namespace) -> int:
    from diffusers import AutoencoderKL
    from tqdm import tqdm

    from loopanimate.animate import default_device
    from loopanimate.atomic import check_destination, check_owned_folder
    from loopanimate.checks import check_device
    from loopanimate.data.cache import cache_latents, is_cache_entry
    from loopanimate.data.manifest import iter_manifest
    from loopanimate.models.folders import component_folder, from_folder

    check_clip_size(args.size)
    out = check_destination(args.output, (args.manifest, args.root, args.vae), "cache folder")
    check_owned_folder(out, is_cache_entry, "latent cache")
    if args.device:
        check_device(args.device)
    entries = iter_manifest(args.manifest, args.root)
    vae_dir = component_folder(args.vae, "vae", "config.json", "--vae")
    quiet_libraries()
    load = functools.partial(AutoencoderKL.from_pretrained, local_files_only=True, use_safetensors=True)
    vae = from_folder(load, vae_dir, "a VAE (--vae)").to(args.device or default_device())
    with tqdm(desc="shards", unit="shard", disable=None) as bar:

        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        index = cache_latents(
            entries,
            vae,
            args.output,
            args.frames,
            args.size,
            args.mode,
            seed=args.seed,
            shard_size=args.shard_size,
            progress=progress,
        )
    clips = sum(shard["count"] for shard in index["shards"])
    skipped = sum(len(shard["skipped"]) for shard in index["shards"])
    print(f"wrote {args.output}: {clips} clips in {len(index['shards'])} shards, {skipped} videos skipped")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from loopanimate.atomic import atomic_file, check_destination, output_error
    from loopanimate.data.synthetic import drifting_sprites, write_mp4

    out = check_destination(args.out, (), "video folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(error, out) from None
    height, width = args.size
    for number in range(args.videos):
        path = out / f"synthetic{number:05d}.mp4"
        if not path.is_file():
            with atomic_file(path) as tmp:
                write_mp4(tmp, drifting_sprites(args.video_frames, (height, width), seed=args.seed + number))
        with atomic_file(path.with_suffix(".txt")) as tmp:
            tmp.write_text("squares drifting over a panning texture")
    print(f"wrote {args.videos} synthetic videos of {args.video_frames} frames at {width}x{height} to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from loopanimate.training.config import load_config

    config = load_config(args.config, {"output": args.output})  # every setting checked before torch loads
    from accelerate import PartialState

    from loopanimate.training.trainer import train

    quiet_libraries()
    final = train(config, resume=args.resume)
    if PartialState().is_main_process:  # under `accelerate launch` every process gets here
        print(f"trained {config.output}: the pipeline is in {final}")
    return 0


MAX_LORA_SCALE = 4.0  # LoRA cards use 0.5-1.2; far past it the fused weights are noise


def cmd_convert(args: argparse.Namespace) -> int:
    import json
    import math

    from loopanimate.atomic import atomic_dir
    from loopanimate.models.convert import convert_unet, read_unet_config
    from loopanimate.pipelines.assemble import assemble_pipeline

    if args.steps is not None and args.sampler is None:
        raise InvalidArgumentError("--steps is for a few-step model: give --sampler lightning or lcm, or drop --steps")
    if args.lora_scale is not None and args.lora is None:
        raise InvalidArgumentError("--lora-scale scales a LoRA: give --lora FILE, or drop --lora-scale")
    if args.lora_scale is not None and not math.isfinite(args.lora_scale):
        raise InvalidArgumentError(f"--lora-scale {args.lora_scale} is not a number: give e.g. 0.8")
    if args.lora_scale is not None and not 0 < args.lora_scale <= MAX_LORA_SCALE:
        raise InvalidArgumentError(
            f"--lora-scale {args.lora_scale:g} is outside (0, {MAX_LORA_SCALE:g}]: give e.g. 0.8 (AnimateLCM's card)"
        )
    for path, flag in ((args.unet, "--unet"), (args.motion_module, "--motion-module"), (args.lora, "--lora")):
        if path is not None and not Path(path).exists():
            raise InvalidArgumentError(f"{flag} {path}: no such file or folder: give the path of the one you have")
    if args.lora is not None and Path(args.lora).suffix.lower() not in (".safetensors", ".ckpt"):
        raise InvalidArgumentError(f"--lora {args.lora} is not a .safetensors or .ckpt file: give the LoRA's weights")
    inputs = (args.unet, args.motion_module, args.image_encoder, args.vae, args.text_encoder, args.unet_config)
    out = check_model_output(args.output, (*inputs, args.lora))
    sampling = None
    if args.sampler is not None:
        from loopanimate.pipelines.few_step import sampler_steps, sampling_defaults

        sampling = sampling_defaults(args.sampler, sampler_steps(args.sampler, args.motion_module, args.steps))
    quiet_libraries()
    unet, report = convert_unet(
        args.unet,
        args.motion_module,
        read_unet_config(args.unet_config),
        args.motion_heads,
        lora=args.lora,
        lora_scale=1.0 if args.lora_scale is None else args.lora_scale,
        # A distilled module runs as distilled, text in every cross-attention (AnimateDiffPipeline's frames).
        context_routing=None if sampling is None else "text",
    )
    if report["max_difference"] > 1e-4:  # both models have the same heads: a difference is the conversion's fault
        raise InvalidArgumentError(
            f"the converted UNet differs from the source by {report['max_difference']:.2e}: a conversion fault, "
            "please report it with the files' names"
        )
    pipe = assemble_pipeline(unet, args.unet, args.vae, args.text_encoder, args.image_encoder)
    if sampling is not None:
        from loopanimate.animate import SAMPLING_FILE
        from loopanimate.pipelines.few_step import few_step_scheduler

        pipe.scheduler = few_step_scheduler(args.sampler, pipe.scheduler.config)
    with atomic_dir(out) as tmp:
        pipe.save_pretrained(tmp)
        (tmp / "conversion_report.json").write_text(json.dumps(report, indent=2))
        if sampling is not None:
            (tmp / SAMPLING_FILE).write_text(json.dumps(sampling, indent=2))
    channels = report["conv_in_channels"]
    new_zero = f" (the {channels[1] - channels[0]} new channels zero)" if channels[1] > channels[0] else ""
    # The check below runs both models with the same heads, so it can vouch for recorded heads only.
    heads = "recorded in the adapter's config" if report["motion_heads_recorded"] else "as given, not checkable"
    print(
        f"wrote {out}: {report['tensors']} UNet tensors, {report['parameters']:,} parameters ({report['dtype']}), "
        f"{len(report['missing'])} missing and {len(report['unexpected'])} unexpected keys; conv_in "
        f"{report['conv_in_channels'][0]} -> {report['conv_in_channels'][1]} channels, motion positions "
        f"{report['motion_positions'][0]} -> {report['motion_positions'][1]}; motion heads {report['motion_heads']} "
        f"({heads}); largest difference from the source "
        f"on random inputs{new_zero}: {report['max_difference']:.1e}"
    )
    if "lora" in report:
        print(f"fused {report['lora']['layers']} LoRA layers at scale {report['lora']['scale']:g} into the SD UNet")
    if sampling is not None:
        print(
            f"sampler {args.sampler}: {type(pipe.scheduler).__name__}, {sampling['steps']} steps, guidance "
            f"{sampling['guidance_text']:g} (sampling.json; `animate` flags override them)"
        )
    return 0


def add_clip_options(parser: argparse.ArgumentParser, frames: int, size: int | None) -> None:
    parser.add_argument(
        "manifest",
        metavar="MANIFEST",
        help="WebVid .csv, .jsonl, a folder of videos + .txt captions, or WebDataset shards "
        "(a .tar, shards/{000000..000099}.tar, a folder of .tar, an fsspec URL or pipe:COMMAND)",
    )
    parser.add_argument("--root", default=None, help="folder the manifest's paths are relative to (default: its own)")
    parser.add_argument("--frames", type=positive, default=frames, help=f"frames per clip (default: {frames})")
    parser.add_argument("--mode", choices=MODES, default=MODES[0], help="clip sampling (default: alss, the paper's)")
    if size is not None:
        parser.add_argument("--seed", type=seed, default=0, help="seed of the sampling (default: 0)")
        parser.add_argument(
            "--size", type=parse_size, default=(size, size), help=f"N or WIDTHxHEIGHT (default: {size})"
        )


def add_loop_options(parser: argparse.ArgumentParser, defaults: str = "") -> None:
    """The settings of one loop, shared by `animate` and `animate-batch` (where they are every row's defaults)."""
    parser.add_argument(
        "--prompt",
        default="",
        help="what moves and how, e.g. 'the cat breathes', 'the clouds drift to the left and the water ripples' "
        "(empty: a gentle sway in the motion engine, unconditional text in diffusion)" + defaults,
    )
    parser.add_argument("--model", default=None, help="LoopAnimate model folder (local); none: the motion engine")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="auto (default): diffusion when --model is given, else the weight-free motion engine",
    )
    parser.add_argument("--frames", type=int, default=35, help="frames generated (default: 35)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same frames (default: 0)")
    parser.add_argument(
        "--size",
        type=parse_box,
        default=None,
        help="the box the loop fits in, keeping the picture's shape: N, WIDTHxHEIGHT (multiples of 8), or phone "
        "(1080x1920), desktop (1920x1080), 4k (3840x2160), turned to the picture (default: the model's; motion "
        f"engine: the picture's, long side at most {MOTION_MAX_SIDE})",
    )
    parser.add_argument("--crop", action="store_true", help="fill the --size box, cropping the picture")
    parser.add_argument("--fps", type=float, default=8.0, help="playback frame rate (default: 8)")
    parser.add_argument("--motion", type=float, default=1.0, help="motion strength, 0 (still) to 1 (default: 1)")
    parser.add_argument(
        "--interpolate", type=int, default=0, help="K flow-interpolated frames between each pair, seam included"
    )
    diffusion = parser.add_argument_group("diffusion engine only (an error with the motion engine)")
    diffusion.add_argument(
        "--steps", type=int, default=None, help=f"denoising steps (default: {DIFFUSION_DEFAULTS['steps']})"
    )
    diffusion.add_argument(
        "--guidance-text",
        type=float,
        default=None,
        help=f"text guidance scale (default: {DIFFUSION_DEFAULTS['guidance_text']})",
    )
    diffusion.add_argument(
        "--guidance-image",
        type=float,
        default=None,
        help=f"image guidance scale (default: {DIFFUSION_DEFAULTS['guidance_image']}, off)",
    )
    diffusion.add_argument("--negative-prompt", default=None, help="text to guide away from")
    diffusion.add_argument(
        "--loop-closure",
        choices=LOOP_CLOSURES,
        default=None,
        help="a rolled circle (cycle, default, any --frames), the model alone (none, the paper's, at most 36 "
        "frames), or conditioning the last frame too (condition)",
    )
    diffusion.add_argument(
        "--loop-windows",
        choices=LOOP_WINDOWS,
        default=None,
        help="a cycle longer than 36 frames: tiles that move every step (tiled, default, each frame once) or "
        "overlapping windows (overlap, each frame twice)",
    )
    diffusion.add_argument(
        "--motion-scale",
        type=int,
        default=None,
        help="a PIA model's motion preset instead of --motion: 0-2 small to large, 3-5 loops, 6-8 styles (as "
        "diffusers' PIAPipeline numbers them)",
    )
    diffusion.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    diffusion.add_argument(
        "--dtype", choices=DTYPES, default=None, help="weights and compute (default: float16 on CUDA, else float32)"
    )
    diffusion.add_argument(
        "--offload",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="text encoder, image encoder, UNet and VAE take turns on the GPU (default: on with CUDA)",
    )
    diffusion.add_argument(
        "--compile", action="store_const", const=True, default=None, help="torch.compile the UNet (faster on GPUs)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="loopanimate", description="Turn one still image and a prompt into a seamless loop.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    init = commands.add_parser("init-model", help="write a randomly initialised model folder (for tests and demos)")
    init.add_argument("out", metavar="OUT", help="folder to write (replaced only once complete)")
    init.add_argument("--tiny", action="store_true", required=True, help="a tiny config that runs on any CPU")
    init.add_argument("--seed", type=seed, default=0, help="seed of the random weights")
    init.set_defaults(run=cmd_init_model)

    animate = commands.add_parser("animate", help="animate IMAGE into a looping GIF, MP4, WebM, WebP or PNG folder")
    animate.add_argument("image", metavar="IMAGE", help="input picture (PNG, JPEG, WebP, ...)")
    animate.add_argument(
        "-o",
        "--output",
        default=None,
        help="OUT.mp4, .gif, .webp, .webm, .png (animated) or a folder for PNG frames (default: IMAGE's name + "
        "-loop.mp4 here, e.g. coffee-loop.mp4)",
    )
    animate.add_argument(
        "--transparent",
        action="store_true",
        help="the object alone over a transparent background, to composite elsewhere (.webm, .png or .webp)",
    )
    animate.add_argument(
        "--mask",
        default=None,
        help="what may move (white), or `auto`: the salient mask (default for the motion engine)",
    )
    animate.add_argument(
        "--save-mask", default=None, help="write the mask that was used to this PNG, to edit and reuse"
    )
    animate.add_argument(
        "--mask-model",
        default=None,
        help="a local SAM or semantic-segmentation folder (transformers) that finds the automatic mask",
    )
    brush = animate.add_argument_group("motion brush, in the picture's pixels (motion engine only)")
    brush.add_argument(
        "--arrows",
        default=None,
        help="where and which way things flow or lean: 'x1,y1>x2,y2;...' or a .json list of [x1, y1, x2, y2]",
    )
    brush.add_argument("--anchors", default=None, help="pins that never move: 'x,y;...' or a .json list of [x, y]")
    add_loop_options(animate)
    animate.set_defaults(run=cmd_animate)

    batch = commands.add_parser(
        "animate-batch", help="animate every picture of a folder or manifest (resumable; `accelerate launch` for many)"
    )
    batch.add_argument("input", metavar="INPUT", help="folder of pictures (+ same-stem .txt prompts), or .csv/.jsonl")
    batch.add_argument("-o", "--output", required=True, help="output folder: one file per row, run.jsonl")
    batch.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="file format of every loop (default: mp4)")
    batch.add_argument("--batch-size", type=positive, default=1, help="diffusion: pictures per UNet call (default: 1)")
    batch.add_argument("--evaluate", action="store_true", help="write the evaluation report of all outputs after")
    add_loop_options(batch, defaults=" (every row's default)")
    batch.set_defaults(run=cmd_animate_batch)

    serve = commands.add_parser(
        "serve", help="the web app: drop a photo, paint what moves, watch and download the loop"
    )
    serve.add_argument("--model", action="append", default=[], help="a model folder for diffusion (repeat for more)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    serve.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    serve.set_defaults(run=cmd_serve)

    sheet = commands.add_parser("contact-sheet", help="a PNG grid of a video's frames, labelled with their indices")
    sheet.add_argument("video", metavar="VIDEO", help="GIF, MP4, WebP or folder of PNG frames")
    sheet.add_argument("-o", "--output", required=True, help="OUT.png")
    sheet.add_argument("--columns", type=positive, default=6, help="frames per row (default: 6)")
    sheet.add_argument("--every", type=positive, default=1, help="show every N-th frame (default: 1)")
    sheet.add_argument("--width", type=positive, default=160, help="width of each frame in pixels (default: 160)")
    sheet.set_defaults(run=cmd_contact_sheet)

    evaluate = commands.add_parser("evaluate", help="score videos with the paper's metrics (and our seam ratio)")
    evaluate.add_argument(
        "source", metavar="RUN_DIR_OR_MANIFEST", help="folder of videos + same-stem images, or .jsonl"
    )
    evaluate.add_argument("-o", "--output", required=True, help="report folder (report.json/.csv/.md, similarity.png)")
    evaluate.add_argument("--clip", default=None, help="local CLIP folder (or a model folder); none: weight-free")
    evaluate.add_argument("--device", default=None, help="device for CLIP (default: cuda if available)")
    evaluate.set_defaults(run=cmd_evaluate)

    data = commands.add_parser("data", help="training videos: check, preview, cache latents")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=OneLineParser)
    check = data_commands.add_parser("check", help="count ok / missing / corrupt / too short videos")
    add_clip_options(check, frames=35, size=None)
    check.set_defaults(run=cmd_data_check)
    preview = data_commands.add_parser("preview", help="ALSS clips of a few videos side by side, with frame indices")
    add_clip_options(preview, frames=35, size=128)
    preview.add_argument("-o", "--output", required=True, help="OUT.gif, OUT.mp4, OUT.webp or a folder")
    preview.add_argument("--videos", type=positive, default=4, help="how many videos (default: 4)")
    preview.add_argument("--fps", type=float, default=4.0, help="playback rate (default: 4)")
    preview.set_defaults(run=cmd_data_preview)
    cache = data_commands.add_parser("cache", help="encode clips once into safetensors latent shards (resumable)")
    add_clip_options(cache, frames=35, size=256)
    cache.add_argument("--vae", required=True, help="VAE folder, or a model folder with vae/ inside")
    cache.add_argument("-o", "--output", required=True, help="cache folder (an interrupted run continues there)")
    cache.add_argument("--shard-size", type=positive, default=64, help="clips per shard (default: 64)")
    cache.add_argument("--device", default=None, help="device for the VAE (default: cuda if available)")
    cache.set_defaults(run=cmd_data_cache)
    synth = data_commands.add_parser("synth", help="write synthetic videos of non-periodic motion (for tests, demos)")
    synth.add_argument("out", metavar="OUT", help="folder for the videos and their .txt captions")
    synth.add_argument("--videos", type=positive, default=24, help="how many (default: 24)")
    synth.add_argument(
        "--video-frames", type=video_frames, default=72, help="frames per video, 2 to 10000 (default: 72)"
    )
    synth.add_argument(
        "--size", type=parse_video_size, default=(96, 128), help="WIDTHxHEIGHT, even sides (default: 128x96)"
    )
    synth.add_argument("--seed", type=seed, default=0, help="seed of the first video (default: 0)")
    synth.set_defaults(run=cmd_data_synth)

    convert = commands.add_parser("convert", help="SD 1.5 + AnimateDiff or PIA -> a LoopAnimate model folder")
    convert.add_argument("--unet", required=True, help="SD 1.5 diffusers folder, or single file (.safetensors/.ckpt)")
    convert.add_argument(
        "--motion-module", required=True, help="AnimateDiff .ckpt/.safetensors, PIA's pia.ckpt, or MotionAdapter folder"
    )
    convert.add_argument(
        "--image-encoder", default=None, help="CLIP ViT-L/14 vision folder with its preprocessor config (not for PIA)"
    )
    convert.add_argument("--vae", default=None, help="VAE folder (default: the SD folder's vae/)")
    convert.add_argument(
        "--text-encoder", default=None, help="CLIP text folder with tokenizer (default: the SD folder's)"
    )
    convert.add_argument("--unet-config", default=None, help="UNet config.json for a single file that is not SD 1.5")
    convert.add_argument(
        "--motion-heads",
        type=positive,
        default=None,
        help="motion-module attention heads, required with a .ckpt/.safetensors module, which does not record them "
        "(8 for AnimateDiff v1-v3 and PIA as published; a MotionAdapter folder records its own)",
    )
    convert.add_argument(
        "--lora",
        default=None,
        help="a spatial LoRA for the SD UNet (kohya/webui or diffusers keys, e.g. AnimateLCM_sd15_t2v_lora"
        ".safetensors), fused into its weights before conversion",
    )
    convert.add_argument(
        "--lora-scale", type=float, default=None, help="weight of --lora (default: 1; AnimateLCM's card: 0.8)"
    )
    convert.add_argument(
        "--sampler",
        choices=("lightning", "lcm"),
        default=None,
        help="a few-step motion module's sampling, written into the model folder (scheduler/ and sampling.json, "
        "which `animate --model` takes as defaults; text read in every cross-attention, as distilled): lightning = "
        "AnimateDiff-Lightning (Euler, trailing timesteps, guidance 1, the N steps of its _Nstep_ file name), lcm = "
        "AnimateLCM (LCM scheduler, 6 steps, guidance 2)",
    )
    convert.add_argument(
        "--steps",
        type=positive,
        default=None,
        help="steps written into sampling.json with --sampler (default: lcm 6; lightning the file name's N, "
        "required when the name does not say)",
    )
    convert.add_argument("-o", "--output", required=True, help="model folder to write (replaced only once complete)")
    convert.set_defaults(run=cmd_convert)

    train = commands.add_parser("train", help="train a stage (configs/stage1.yaml ...) on accelerate")
    train.add_argument("--config", required=True, help="YAML file of training settings (see configs/)")
    train.add_argument("--resume", default=None, help="a checkpoint folder, or `latest` in the run's checkpoints/")
    train.add_argument("--output", default=None, help="run folder (default: the config's `output`)")
    train.set_defaults(run=cmd_train)
    return parser


def exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` runs and no temporary file is left behind."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore")  # libraries' deprecation notices are not the user's; errors are one line
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        return args.run(args)
    except LoopAnimateError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while threads and bars wind down stays quiet
        print("error: interrupted; a file being written was not kept (finished ones are)", file=sys.stderr)
        return 130
