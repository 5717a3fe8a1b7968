"""LoopAnimate's ComfyUI nodes: a thin face over the library, like the CLI and the web app.

Each node turns ComfyUI's tensors into what `loopanimate.animate` takes (a picture, a mask), calls it, and turns the
loop back into ComfyUI's layout: IMAGE is [batch, height, width, 3] float32 in [0, 1] on the CPU, MASK [batch,
height, width] (or [height, width]) in [0, 1]. Engines, sizes, checks and files are the library's; a bad input raises
the library's one-line error, which ComfyUI shows as the node's error. The library's progress callback drives
ComfyUI's progress bar and checks its Cancel, so an interrupt unwinds through the library, which removes what it was
writing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

import comfy.model_management
import comfy.utils
import folder_paths
import numpy as np
import PIL.Image
import torch
from comfy_api.latest import io

from loopanimate.animate import (
    DIFFUSION_DEFAULTS,
    DTYPES,
    MAX_FPS,
    MAX_FRAMES,
    MAX_SEED,
    MAX_STEPS,
    MIN_FPS,
    Loop,
    LoopRequest,
    ProgressCallback,
    make_loop,
    parse_size,
    salient_alpha,
)
from loopanimate.checks import check_device, check_number
from loopanimate.errors import InvalidArgumentError
from loopanimate.export import FILE_FORMATS, frame_uint8, write_video
from loopanimate.frames import Frames, prefetched
from loopanimate.pipelines.loading import check_model_dir
from loopanimate.pipelines.loop_closure import LOOP_CLOSURES
from loopanimate.reader import read_picture

logger = logging.getLogger(__name__)

CATEGORY = "LoopAnimate"
MODELS_FOLDER = "loopanimate"  # under ComfyUI's models folder: where a relative model path is looked for
REQUEST_DEFAULTS = {field.name: field.default for field in dataclasses.fields(LoopRequest)}
FORMATS = [suffix[1:] for suffix in FILE_FORMATS]  # the exporter's file formats: gif, mp4, webp, webm, png (animated)
LoopAnimateModelType = io.Custom("LOOPANIMATE_MODEL")

SIZE_TOOLTIP = (
    "a box the loop fits in, keeping the picture's shape, sides multiples of 8: N, WIDTHxHEIGHT, phone, desktop or "
    "4k; empty: {}"
)
MASK_TOOLTIP = "white = may move; the rest of the picture stays the input in every frame"


@dataclasses.dataclass(frozen=True)
class LoopAnimateModel:
    """A checked model folder and where it runs. The weights load on the first loop and stay loaded for the next (the
    library keeps the last four pipelines it loaded)."""

    path: str
    device: str | None  # None: CUDA when there is one, else the CPU
    dtype: str | None  # None: float16 on CUDA, else float32


def comfy_progress() -> ProgressCallback:
    """The library's progress callback as ComfyUI's progress bar; it raises ComfyUI's interrupt when Cancel was pressed,
    so the job stops at the next step or frame."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        comfy.model_management.throw_exception_if_processing_interrupted()
        if bar is None:
            bar = comfy.utils.ProgressBar(total)
        bar.update_absolute(done, total)

    return progress


def pictures(image: torch.Tensor) -> list[np.ndarray]:
    """A ComfyUI IMAGE as its pictures, (H, W, 3) uint8 each."""
    if image.ndim != 4 or image.shape[-1] != 3:
        raise InvalidArgumentError(
            f"the image tensor is {list(image.shape)}: give a ComfyUI IMAGE, [batch, height, width, 3]"
        )
    return [frame_uint8(picture) for picture in image.detach().cpu().float().numpy()]


def one_picture(image: torch.Tensor) -> PIL.Image.Image:
    """The one picture a loop is made from; a batch of several is refused rather than silently cut to its first."""
    batch = pictures(image)
    if len(batch) != 1:
        raise InvalidArgumentError(
            f"the image is a batch of {len(batch)} pictures: a loop is made from one picture; pick one first "
            "(ImageFromBatch)"
        )
    return PIL.Image.fromarray(batch[0])


def one_mask(mask: torch.Tensor | None) -> np.ndarray | None:
    """A ComfyUI MASK ([1, H, W] or [H, W]) as the (H, W) float array the library reads as a mask."""
    if mask is None:
        return None
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise InvalidArgumentError(
            f"the mask tensor is {list(mask.shape)}: give one ComfyUI MASK, [1, height, width] or [height, width]"
        )
    return mask.detach().cpu().float().numpy()


def size_of(text: str) -> tuple[int, int] | str | None:
    """The `size` widget as the library's size: empty means the engine's default."""
    return parse_size(text) if text.strip() else None


def image_batch(frames: Frames, progress: ProgressCallback | None = None) -> torch.Tensor:
    """A loop's frames ((F, H, W, 3) uint8, made on demand by the motion engine) as a ComfyUI IMAGE; `progress` counts
    the frames made."""
    batch = None
    with contextlib.closing(prefetched(frames)) as stream:  # closing stops the frame workers on a cancel
        for index, frame in enumerate(stream):
            if batch is None:
                batch = torch.empty((len(frames), *frame.shape), dtype=torch.float32)
            batch[index] = torch.from_numpy(frame.astype(np.float32) / 255.0)  # a copy: engine frames are read-only
            if progress is not None:
                progress(index + 1, len(frames))
    return batch


def loop_output(loop: Loop, progress: ProgressCallback | None = None) -> io.NodeOutput:
    """The loop's frames as the node's output, its notes (engine, size, what was assumed) in ComfyUI's log."""
    frames = image_batch(loop.frames, progress)
    for note in loop.notes:
        logger.info("LoopAnimate: %s", note)
    return io.NodeOutput(frames)


class LoadModel(io.ComfyNode):
    """Check a LoopAnimate model folder on this machine (never downloaded) and say where it runs."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoopAnimateLoadModel",
            display_name="LoopAnimate Load Model",
            category=CATEGORY,
            description="A LoopAnimate model folder for the diffusion loop; nothing is downloaded.",
            inputs=[
                io.String.Input(
                    "model_dir",
                    default="",
                    tooltip=f"the model folder: absolute, or relative to ComfyUI's models/{MODELS_FOLDER} "
                    "(`loopanimate init-model` and `loopanimate convert` make one)",
                ),
                io.String.Input(
                    "device", default="", tooltip="cpu, cuda, cuda:N or mps; empty: CUDA when there is one"
                ),
                io.Combo.Input(
                    "dtype", options=["auto", *DTYPES], default="auto", tooltip="auto: float16 on CUDA, else float32"
                ),
            ],
            outputs=[LoopAnimateModelType.Output("model")],
        )

    @classmethod
    def execute(cls, model_dir: str, device: str, dtype: str) -> io.NodeOutput:
        path = Path(folder_paths.models_dir, MODELS_FOLDER, Path(model_dir.strip()).expanduser())
        check_model_dir(path)
        if device.strip():
            check_device(device.strip())
        return io.NodeOutput(LoopAnimateModel(str(path), device.strip() or None, None if dtype == "auto" else dtype))


class SalientMask(io.ComfyNode):
    """The salient object of each picture, as the motion engine finds it."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoopAnimateSalientMask",
            display_name="LoopAnimate Salient Mask",
            category=CATEGORY,
            description="The salient object of each picture (white), without weights: what the motion engine moves.",
            inputs=[io.Image.Input("image")],
            outputs=[io.Mask.Output("mask")],
        )

    @classmethod
    def execute(cls, image: torch.Tensor) -> io.NodeOutput:
        progress = comfy_progress()
        batch = pictures(image)
        masks = []
        for done, picture in enumerate(batch, start=1):
            masks.append(torch.from_numpy(salient_alpha(read_picture(PIL.Image.fromarray(picture)))).float())
            progress(done, len(batch))
        return io.NodeOutput(torch.stack(masks))


def loop_inputs(size_default: str) -> list[io.Input]:
    """The inputs both loop nodes share, after their own."""
    return [
        io.Image.Input("image"),
        io.Mask.Input("mask", optional=True, tooltip=MASK_TOOLTIP),
        io.String.Input("prompt", multiline=True, default="", tooltip="what moves and how, e.g. 'the cup sways'"),
        io.Int.Input(
            "frames",
            default=REQUEST_DEFAULTS["num_frames"],
            min=2,
            max=MAX_FRAMES,
            tooltip="frames made; the last repeats the first, so the loop closes (Save Loop drops it)",
        ),
        io.Int.Input("seed", default=REQUEST_DEFAULTS["seed"], min=0, max=MAX_SEED, control_after_generate=True),
        io.Float.Input(
            "motion",
            default=REQUEST_DEFAULTS["motion_strength"],
            min=0.0,
            max=1.0,
            step=0.05,
            tooltip="motion strength: 0 still, 1 full",
        ),
        io.String.Input("size", default="", tooltip=SIZE_TOOLTIP.format(size_default)),
        io.Boolean.Input("crop", default=REQUEST_DEFAULTS["crop"], tooltip="fill the size's box, cropping the picture"),
    ]


class MotionLoop(io.ComfyNode):
    """A loop from the weight-free motion engine (CPU, no model)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoopAnimateMotionLoop",
            display_name="LoopAnimate Motion Loop",
            category=CATEGORY,
            description="A seamless loop of the picture's salient object (or the mask's), moved as the prompt says, "
            "by the weight-free motion engine.",
            inputs=loop_inputs("the picture's own, the long side at most 1024"),
            outputs=[io.Image.Output("loop", display_name="frames")],
        )

    @classmethod
    def execute(
        cls,
        image: torch.Tensor,
        prompt: str,
        frames: int,
        seed: int,
        motion: float,
        size: str,
        crop: bool,
        mask: torch.Tensor | None = None,
    ) -> io.NodeOutput:
        request = LoopRequest(
            one_picture(image),
            prompt,
            engine="motion",
            mask=one_mask(mask),  # none: the salient mask
            num_frames=frames,
            seed=seed,
            size=size_of(size),
            crop=crop,
            motion_strength=motion,
        )
        # The motion engine makes each frame when it is asked for: the progress bar counts frames.
        return loop_output(make_loop(request), comfy_progress())


class DiffusionLoop(io.ComfyNode):
    """A loop from a LoopAnimate diffusion model."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoopAnimateDiffusionLoop",
            display_name="LoopAnimate Diffusion Loop",
            category=CATEGORY,
            description="A seamless loop generated by a LoopAnimate (or converted PIA) model from the picture and "
            "the prompt; with a mask, only the mask's part moves.",
            inputs=[
                LoopAnimateModelType.Input("model"),
                *loop_inputs("the model's own square"),
                io.String.Input("negative_prompt", multiline=True, default=DIFFUSION_DEFAULTS["negative_prompt"]),
                io.Int.Input("steps", default=DIFFUSION_DEFAULTS["steps"], min=1, max=MAX_STEPS),
                io.Float.Input(
                    "guidance", default=DIFFUSION_DEFAULTS["guidance_text"], min=0.0, step=0.1, tooltip="text guidance"
                ),
                io.Float.Input(
                    "image_guidance",
                    default=DIFFUSION_DEFAULTS["guidance_image"],
                    min=0.0,
                    step=0.1,
                    tooltip="image guidance; 1 is off",
                ),
                io.Combo.Input(
                    "loop_closure",
                    options=list(LOOP_CLOSURES),
                    default=DIFFUSION_DEFAULTS["loop_closure"],
                    tooltip="cycle: denoised as a circle, any length; none: the model's own loop; condition: the "
                    "last frame conditioned on the picture too",
                ),
            ],
            outputs=[io.Image.Output("loop", display_name="frames")],
        )

    @classmethod
    def execute(
        cls,
        model: LoopAnimateModel,
        image: torch.Tensor,
        prompt: str,
        frames: int,
        seed: int,
        motion: float,
        size: str,
        crop: bool,
        negative_prompt: str,
        steps: int,
        guidance: float,
        image_guidance: float,
        loop_closure: str,
        mask: torch.Tensor | None = None,
    ) -> io.NodeOutput:
        request = LoopRequest(
            one_picture(image),
            prompt,
            engine="diffusion",
            model=model.path,
            mask=one_mask(mask),  # none: the whole frame moves
            num_frames=frames,
            seed=seed,
            size=size_of(size),
            crop=crop,
            motion_strength=motion,
            steps=steps,
            guidance_text=guidance,
            guidance_image=image_guidance,
            negative_prompt=negative_prompt,
            loop_closure=loop_closure,
            device=model.device,
            dtype=model.dtype,
        )
        # The progress bar counts denoising steps; the decoded frames are ready when the last step ends.
        return loop_output(make_loop(request, comfy_progress()))


class SaveLoop(io.ComfyNode):
    """Write frames as a looping video into ComfyUI's output folder, through the library's exporter."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoopAnimateSaveLoop",
            display_name="LoopAnimate Save Loop",
            category=CATEGORY,
            description="MP4, WebP, GIF, WebM or animated PNG that loops without showing a frame twice: the last "
            "frame, which repeats the first, is not written.",
            inputs=[
                io.Image.Input("frames"),
                io.String.Input("filename_prefix", default="LoopAnimate"),
                io.Combo.Input("format", options=FORMATS, default="mp4"),
                io.Float.Input("fps", default=REQUEST_DEFAULTS["fps"], min=MIN_FPS, max=MAX_FPS, step=0.5),
                io.Boolean.Input(
                    "closed_loop",
                    default=True,
                    tooltip="the last frame repeats the first (every LoopAnimate loop): leave it out of the file",
                ),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(
        cls, frames: torch.Tensor, filename_prefix: str, format: str, fps: float, closed_loop: bool
    ) -> io.NodeOutput:
        batch = pictures(frames)
        check_number("fps", fps, MIN_FPS, MAX_FPS)
        if closed_loop and len(batch) < 2:
            raise InvalidArgumentError(
                f"a closed loop of {len(batch)} frame leaves nothing once its repeated last frame is dropped: give "
                "at least 2 frames, or turn closed_loop off"
            )
        height, width = batch[0].shape[:2]
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), width, height
        )
        file = f"{name}_{counter:05}_.{format}"
        written = write_video(batch, Path(folder, file), fps=fps, closed_loop=closed_loop, progress=comfy_progress())
        for note in written.notes:
            logger.info("LoopAnimate: %s", note)
        return io.NodeOutput(
            ui={"images": [{"filename": file, "subfolder": subfolder, "type": "output"}], "animated": (True,)}
        )


NODES: list[type[io.ComfyNode]] = [LoadModel, SalientMask, MotionLoop, DiffusionLoop, SaveLoop]
