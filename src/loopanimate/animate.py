"""Make one loop: choose the engine, fit the picture, run it, interpolate, export.

The one function every face calls (the CLI's `animate`, the web app, `animate-batch`), over a small request
dataclass, so none of them chooses engines, sizes or formats itself. Everything that can be known before the work
is checked by `LoopRequest.check()`; the weight-free path imports no torch.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import PIL.Image

from loopanimate.checks import check_device, check_int, check_number
from loopanimate.errors import InvalidArgumentError, ModelLoadError
from loopanimate.models.layout import LOOPANIMATE_MAX_FRAMES
from loopanimate.pipelines.loading import check_model_dir
from loopanimate.pipelines.loop_closure import LOOP_CLOSURES, LOOP_WINDOWS, check_frame_count

if TYPE_CHECKING:
    from loopanimate.export import Written
    from loopanimate.frames import Frames

ENGINES = ("auto", "motion", "diffusion")
# The motion engine's default: the long side shrunk to this (35 frames: 0.7 s at 512, 1.3 s at 1024, whole command,
# bench/wallpaper_sizes.py); 1024 is sharp on a phone, and a larger photo is rarely worth the 2.7x wait of 1920.
MOTION_MAX_SIDE = 1024
MIN_SIDE = 16  # a picture thinner than this after fitting is no wallpaper (a 4000x8 strip would become 512x1)
MAX_SIDE = 8192  # 8K; a longer side is a typo (99992) or a poster, refused before a byte is allocated
MAX_SEED = 2**32 - 1
MIN_FPS = 0.1  # a frame every 10 s; far slower overflows a GIF's frame time (655 s) and is a typo
MAX_FPS = 120.0
MAX_PLAYBACK_FPS = 240.0  # the rate after interpolation: above it, players drop frames
MAX_INTERPOLATE = 15
MAX_STEPS = 1000
MAX_FRAMES = 1024  # generated frames; a wallpaper loop is tens of frames, a thousand is a minute at 16 fps
# Frames x pixels written, interpolation included: 2**31 is 140 frames at 3840x2160, about a minute of the engine.
MAX_PIXEL_FRAMES = 2**31
# Memory a loop may take, estimated before the work: half this machine's memory, at least 2 GiB.
MEMORY_BUDGET = max(2**31, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
# Bytes per pixel, measured (bench/motion_engine.py): the engine's working planes, and each frame held until written
# (uint8 RGB, twice: the frames and the encoder's padded copy).
WORKING_BYTES_PER_PIXEL = 256
HELD_BYTES_PER_PIXEL_FRAME = 6
# Diffusion-only settings and their defaults; with the motion engine, setting one is an error.
DIFFUSION_DEFAULTS = {
    "steps": 25,
    "guidance_text": 7.5,
    "guidance_image": 1.0,
    "negative_prompt": "",
    "loop_closure": LOOP_CLOSURES[0],
    "loop_windows": LOOP_WINDOWS[0],
    "motion_scale": None,
    "device": None,
    "dtype": None,  # by device: float16 on CUDA (an 8 GB card, README), float32 elsewhere
    "offload": None,  # by device: on with CUDA (encoders, UNet and VAE take turns on the GPU)
    "compile": False,
}

DTYPES = ("float32", "float16", "bfloat16")
ProgressCallback = Callable[[int, int], None]
Picture = str | os.PathLike | PIL.Image.Image
# Presets, (long side, short side): turned to the picture's orientation.
SIZE_PRESETS = {"phone": (1920, 1080), "desktop": (1920, 1080), "4k": (3840, 2160)}
Size = tuple[int, int] | str  # (height, width) of the box, or a preset name
MaskInput = str | os.PathLike | PIL.Image.Image | np.ndarray


def parse_size(text: str, presets: bool = True) -> Size:
    """'512' -> (512, 512); '768x512' (width x height) -> (512, 768) as (height, width); with `presets`, 'phone',
    'desktop' or '4k' stay names (turned to the picture's orientation later). `check` judges the values."""
    if presets and text.strip().lower() in SIZE_PRESETS:
        return text.strip().lower()
    try:
        parts = [int(part) for part in text.lower().replace(" ", "").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise InvalidArgumentError(
            f"invalid size {text!r}: give N, WIDTHxHEIGHT or a preset ({', '.join(SIZE_PRESETS)}), e.g. 768x512"
        )
    width, height = parts
    return height, width


SAMPLING_FILE = "sampling.json"  # a model folder's own sampling defaults (a few-step model: steps 4, guidance 1)
SAMPLING_SETTINGS = {"steps": int, "guidance_text": float, "guidance_image": float, "loop_closure": str}


@functools.lru_cache(maxsize=16)
def model_sampling(model: str | os.PathLike) -> dict:
    """The sampling defaults a model folder declares in `sampling.json` (steps, guidance, loop closure), checked: a
    distilled few-step model runs at its own settings without flags, which the command line still overrides."""
    import json

    from loopanimate.reader import read_text

    path = Path(model) / SAMPLING_FILE
    if not path.is_file():
        return {}
    try:
        declared = json.loads(read_text(path, "sampling defaults"))
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(f"{path} is not valid JSON ({error.msg}): fix it or remove it") from None
    if not isinstance(declared, dict):
        raise InvalidArgumentError(f'{path} must be an object of settings, e.g. {{"steps": 4}}')
    for name, value in declared.items():
        kind = SAMPLING_SETTINGS.get(name)
        if kind is None:
            raise InvalidArgumentError(f"{path}: unknown setting {name!r}: known are {', '.join(SAMPLING_SETTINGS)}")
        if isinstance(value, bool) or not isinstance(value, kind if kind is not float else (int, float)):
            wanted = {int: "a whole number", float: "a number", str: "text"}[kind]
            raise InvalidArgumentError(f"{path}: {name} is {value!r}; give {wanted}")
    return declared


def model_clip_length(model: str | os.PathLike) -> int:
    """The frames a model's motion modules learned (PIA: 16), from its UNet config, without loading torch."""
    import json

    from loopanimate.reader import read_text

    try:
        config = json.loads(read_text(Path(model) / "unet" / "config.json", "UNet config"))
        trained = (config.get("conditioning") or {}).get("trained_frames")
        return int(trained or config.get("motion_max_seq_length") or LOOPANIMATE_MAX_FRAMES)
    except (InvalidArgumentError, ValueError, TypeError, AttributeError):
        return LOOPANIMATE_MAX_FRAMES  # the loader says what is wrong with the folder, in its own words


def box_of(size: Size, picture: tuple[int, int]) -> tuple[int, int]:
    """The box (height, width) a size names: a preset turned to the picture's (width, height) orientation."""
    if isinstance(size, str):
        long, short = SIZE_PRESETS[size]
        return (short, long) if picture[0] > picture[1] else (long, short)
    return size


def output_size(
    size: Size | None, crop: bool, picture: tuple[int, int], default_box: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The loop's (height, width) for a picture of (width, height): inside the box keeping the picture's shape, sides
    multiples of 8 (or the box itself with `crop`); no box: the long side shrunk to MOTION_MAX_SIDE."""
    if size is None and default_box is None:
        scale = min(1.0, MOTION_MAX_SIDE / max(picture))
        return max(1, round(picture[1] * scale)), max(1, round(picture[0] * scale))
    box_height, box_width = box_of(size, picture) if size is not None else default_box
    if crop:
        return box_height, box_width
    scale = min(box_width / picture[0], box_height / picture[1])
    return max(8, int(picture[1] * scale) // 8 * 8), max(8, int(picture[0] * scale) // 8 * 8)


def size_note(size: Size | None, crop: bool, fitted: tuple[int, int], default_box: tuple[int, int] | None) -> str:
    """One line saying the size used and why."""
    height, width = fitted
    if size is None and default_box is None:
        return (
            f"size: {width}x{height}, the picture's shape with the long side at most {MOTION_MAX_SIDE} (--size sets it)"
        )
    box_height, box_width = box_of(size, (width, height)) if size is not None else default_box
    if crop:
        return f"size: {width}x{height}, the picture cropped to fill the box"
    return (
        f"size: {width}x{height}, the picture inside {box_width}x{box_height} keeping its shape (--crop fills the box)"
    )


@dataclass
class LoopRequest:
    """One loop to make. `None` in a diffusion-only field means its default (DIFFUSION_DEFAULTS)."""

    image: Picture  # the picture: a path or a PIL image
    prompt: str = ""  # what moves and how
    engine: str = "auto"  # auto: diffusion when a model is given, else the weight-free motion engine
    model: str | None = None  # LoopAnimate model folder (diffusion)
    mask: MaskInput | None = None  # white = what may move; "auto": the salient mask; None: motion auto, diffusion all
    num_frames: int = 35  # frames generated; the last equals the first
    seed: int = 0  # same seed, same frames
    size: Size | None = None  # box (height, width), multiples of 8, or a preset; None: the model's, or the picture's
    crop: bool = False  # fill the box, cropping the picture, instead of fitting the picture inside it
    fps: float = 8.0  # playback rate of the generated frames
    motion_strength: float = 1.0  # 0 still, 1 as trained
    interpolate: int = 0  # flow-interpolated frames between each pair, the seam included
    arrows: str | None = None  # motion engine: the motion brush's arrows, "x1,y1>x2,y2;..." or a .json (brush.py)
    anchors: str | None = None  # motion engine: pins that never move, "x,y;..." or a .json, in the picture's pixels
    mask_model: str | None = None  # a local SAM or semantic-segmentation folder for the automatic mask
    steps: int | None = None  # diffusion: denoising steps
    guidance_text: float | None = None  # diffusion: text guidance scale
    guidance_image: float | None = None  # diffusion: image guidance scale (1: off)
    negative_prompt: str | None = None  # diffusion: text to guide away from
    loop_closure: str | None = None  # diffusion: cycle, none or condition
    loop_windows: str | None = None  # diffusion: how a cycle longer than the model is split (tiled or overlap)
    motion_scale: int | None = None  # diffusion on PIA's weights: its motion preset 0-8 instead of motion_strength
    device: str | None = None  # diffusion: cpu, cuda, ... (None: cuda if available)
    dtype: str | None = None  # diffusion: float32, float16 or bfloat16 (None: float16 on CUDA, else float32)
    offload: bool | None = None  # diffusion: models take turns on the GPU (None: on with CUDA)
    compile: bool | None = None  # diffusion: torch.compile the UNet's blocks (slow first loop, faster after)

    def resolved_engine(self) -> str:
        return self.engine if self.engine != "auto" else ("diffusion" if self.model else "motion")

    def setting(self, name: str):
        """A diffusion-only setting, or its default when not given."""
        value = getattr(self, name)
        if value is not None:
            return value
        declared = model_sampling(self.model) if self.model else {}
        return declared.get(name, DIFFUSION_DEFAULTS[name])

    def check(self) -> str:
        """Raise InvalidArgumentError naming the first setting that cannot work; return the engine that will run."""
        if self.engine not in ENGINES:
            raise InvalidArgumentError(f"engine {self.engine!r} is unknown: use one of {', '.join(ENGINES)}")
        engine = self.resolved_engine()
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("interpolate", self.interpolate, 0, MAX_INTERPOLATE)
        check_number("fps", self.fps, MIN_FPS, MAX_FPS)
        if self.fps * (self.interpolate + 1) > MAX_PLAYBACK_FPS:
            raise InvalidArgumentError(
                f"fps {self.fps:g} with {self.interpolate} frames between each pair plays at "
                f"{self.fps * (self.interpolate + 1):g} fps: give at most {MAX_PLAYBACK_FPS:g} in all (lower --fps "
                "or --interpolate)"
            )
        check_number("motion", self.motion_strength, 0.0, 1.0)
        if isinstance(self.size, str) and self.size not in SIZE_PRESETS:
            raise InvalidArgumentError(
                f"size {self.size!r} is unknown: give N, WIDTHxHEIGHT or {', '.join(SIZE_PRESETS)}"
            )
        if self.size is not None:
            height, width = box_of(self.size, (1, 1))
            if min(height, width) < MIN_SIDE or max(height, width) > MAX_SIDE or height % 8 or width % 8:
                raise InvalidArgumentError(
                    f"size {width}x{height} does not work: give both sides as multiples of 8, from {MIN_SIDE} to "
                    f"{MAX_SIDE}"
                )
            label = f"the {self.size} box" if isinstance(self.size, str) else None
            check_loop_size(self.num_frames, self.interpolate, height, width, label)
        if self.mask_model is not None:
            from loopanimate.engines.mask_model import check_mask_model

            if self.mask is not None and not is_auto(self.mask):
                raise InvalidArgumentError("--mask-model finds the mask: drop --mask PATH, or drop --mask-model")
            if engine == "diffusion" and self.mask is None:
                raise InvalidArgumentError("--mask-model with diffusion needs --mask auto (else all of it may move)")
            check_mask_model(self.mask_model)
        if engine == "motion":
            self._check_motion()
        else:
            self._check_diffusion()
        return engine

    def brush(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The motion brush's arrows (N, 4) and anchors (N, 2), parsed, in the input picture's pixels."""
        from loopanimate.engines.brush import parse_anchors, parse_arrows

        arrows = parse_arrows(self.arrows) if self.arrows is not None else None
        anchors = parse_anchors(self.anchors) if self.anchors is not None else None
        return arrows, anchors

    def _check_motion(self) -> None:
        if self.model:
            raise InvalidArgumentError("--model is used by the diffusion engine only: drop it, or drop --engine motion")
        self.brush()
        unused = [f.name for f in fields(self) if f.name in DIFFUSION_DEFAULTS and getattr(self, f.name) is not None]
        if unused:
            option = "--" + unused[0].replace("_", "-")
            raise InvalidArgumentError(
                f"{option} is used by the diffusion engine only: drop it, or give --model DIR to use diffusion"
            )
        check_int("frames", self.num_frames, 2, MAX_FRAMES)

    def _check_diffusion(self) -> None:
        if not self.model:
            raise InvalidArgumentError(
                "the diffusion engine needs --model DIR (or drop --engine to use the motion engine)"
            )
        for name in ("arrows", "anchors"):
            if getattr(self, name) is not None:
                raise InvalidArgumentError(f"--{name} is used by the motion engine only: drop it, or drop --model")
        check_model_dir(self.model)
        check_int("steps", self.setting("steps"), 1, MAX_STEPS)
        check_number("guidance-text", self.setting("guidance_text"), 0.0, None)
        check_number("guidance-image", self.setting("guidance_image"), 0.0, None)
        check_int("frames", self.num_frames, 2, MAX_FRAMES)
        check_frame_count(self.num_frames, self.setting("loop_closure"), model_clip_length(self.model))
        if self.motion_scale is not None:
            from loopanimate.models.conditioning import AFFINITY_PRESETS

            check_int("motion-scale", self.motion_scale, 0, len(AFFINITY_PRESETS) - 1)
        if self.device is not None:
            check_device(self.device)
        if self.setting("loop_windows") not in LOOP_WINDOWS:
            raise InvalidArgumentError(f"loop windows {self.loop_windows!r} are unknown: use {', '.join(LOOP_WINDOWS)}")
        if self.offload and (self.device or default_device()) == "cpu":
            raise InvalidArgumentError("--offload moves models between the CPU and a GPU: drop it on the CPU")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise InvalidArgumentError(f"dtype {self.dtype!r} is unknown: use one of {', '.join(DTYPES)}")


@dataclass
class Loop:
    """A made loop: frames (F, H, W, 3) uint8 whose last frame equals the first, and what a face may report. The motion
    engine's frames are a lazy sequence, made as they are written (see `frames.py`)."""

    frames: Frames
    fps: float  # playback rate, interpolation included
    mask: np.ndarray | None  # (H, W) float in [0, 1]: what was allowed to move (None: everything, in diffusion)
    engine: str  # "motion" or "diffusion"
    generated: int  # frames the engine made, before interpolation
    notes: list[str] = field(default_factory=list)  # one-line reports: what ran, what was assumed


def make_loop(request: LoopRequest, progress: ProgressCallback | None = None) -> Loop:
    """Run `request` and return the loop. `progress(step, total)` follows the denoising steps (diffusion)."""
    return make_loops([request], progress)[0]


def batch_key(request: LoopRequest) -> tuple:
    """Requests with equal keys can share one diffusion run (one UNet call per step for all their pictures): every
    setting but the picture, the prompt and the seed. Motion-engine requests never share."""
    if request.resolved_engine() != "diffusion":
        return (id(request),)
    shared = ("model", "device", "num_frames", "size", "crop", "motion_strength", "interpolate", "fps")
    return tuple(getattr(request, name) for name in shared) + tuple(request.setting(n) for n in DIFFUSION_DEFAULTS)


def make_loops(requests: list[LoopRequest], progress: ProgressCallback | None = None) -> list[Loop]:
    """Several loops with equal `batch_key`s in one run: diffusion batches their pictures (one generator per seed, so
    each loop is the one `make_loop` would make, up to float rounding); the motion engine makes them in turn."""
    from loopanimate.reader import read_picture

    if len({batch_key(request) for request in requests}) > 1:
        raise InvalidArgumentError("these requests differ in more than picture, prompt and seed: make them one by one")
    engines = {request.check() for request in requests}
    images = [read_picture(request.image) for request in requests]
    if engines == {"motion"}:
        made = [_run_motion_engine(request, image) for request, image in zip(requests, images, strict=True)]
    else:
        made = _run_diffusion_engine(requests, images, progress)
    return [_finish(request, *result) for request, result in zip(requests, made, strict=True)]


def _finish(request: LoopRequest, frames: Frames, mask: np.ndarray | None, notes: list[str]) -> Loop:
    """Interpolate if asked: K frames between each pair, the seam included, at (K + 1) times the rate."""
    fps = request.fps
    if request.interpolate:
        from loopanimate.interpolate import interpolate_loop

        frames = interpolate_loop(frames, request.interpolate, closed_loop=True)
        fps *= request.interpolate + 1  # the same loop, as long as before, smoother
    return Loop(frames, fps, mask, request.resolved_engine(), request.num_frames, notes)


def save_loop(
    loop: Loop,
    output: str | os.PathLike,
    inputs: tuple = (),
    transparent: bool = False,
    progress: ProgressCallback | None = None,
) -> Written:
    """Write `loop` (format from the extension) without its repeated seam frame; never onto one of `inputs`.
    `transparent`: the object alone over nothing (its mask as alpha), in WebM, animated PNG or WebP. `progress(done,
    total)` follows the frames written (the motion engine makes them as they are written)."""
    from loopanimate.export import write_video

    if transparent and loop.mask is None:
        raise InvalidArgumentError("a transparent loop needs a mask (diffusion moved everything): give --mask auto")
    alpha = loop.mask if transparent else None
    return write_video(
        loop.frames, output, fps=loop.fps, closed_loop=True, inputs=inputs, alpha=alpha, progress=progress
    )


def default_output(picture: Picture, fmt: str = "mp4") -> str:
    """The name a loop of `picture` gets when none is given: `coffee.png` -> `coffee-loop.mp4`."""
    stem = Path(picture).stem if isinstance(picture, str | os.PathLike) else "loop"
    return f"{stem}-loop.{fmt}" if fmt != "frames" else f"{stem}-loop"


def save_mask(loop: Loop, path: str | os.PathLike, inputs: tuple = ()) -> None:
    """Write the mask a loop was made with as a PNG (white = moved), to fix in any editor and pass back as --mask."""
    from loopanimate.atomic import atomic_file
    from loopanimate.export import check_file_output, our_png_info

    if loop.mask is None:
        raise InvalidArgumentError("this loop was made without a mask (diffusion moved everything): give --mask auto")
    check_file_output(path, (".png",), "the mask", inputs)
    with atomic_file(path) as tmp:
        PIL.Image.fromarray((loop.mask * 255).round().astype(np.uint8), "L").save(
            tmp, format="PNG", pnginfo=our_png_info()
        )


def request_inputs(request: LoopRequest) -> tuple:
    """The files a request reads, which no output of it may overwrite."""
    return tuple(p for p in (request.image, request.mask) if isinstance(p, str | os.PathLike) and str(p).strip())


def animate(request: LoopRequest, output: str | os.PathLike, progress: ProgressCallback | None = None) -> Loop:
    """Check the request and the output path before any work, make the loop, write it."""
    from loopanimate.export import check_output_path

    request.check()
    check_output_path(output, request_inputs(request))
    loop = make_loop(request, progress)
    save_loop(loop, output, request_inputs(request))
    return loop


def loop_bytes(num_frames: int, interpolate: int, height: int, width: int) -> int:
    """Memory a loop of this size takes, estimated: the engine's working planes and every frame held."""
    shown = num_frames * (interpolate + 1)
    return height * width * (WORKING_BYTES_PER_PIXEL + HELD_BYTES_PER_PIXEL_FRAME * shown)


def check_loop_size(num_frames: int, interpolate: int, height: int, width: int, label: str | None = None) -> None:
    """Refuse, before the work, a loop larger than MEMORY_BUDGET or MAX_PIXEL_FRAMES, naming the most frames that
    fit at this size (`label` names it, e.g. a preset's box)."""
    where = label or f"{width}x{height}"
    shown = num_frames * (interpolate + 1)
    if shown * height * width > MAX_PIXEL_FRAMES:
        longest = MAX_PIXEL_FRAMES // (height * width * (interpolate + 1))
        raise InvalidArgumentError(
            f"{num_frames} frames at {where} are too many: give at most {longest} frames at this size "
            "(or a smaller --size)"
        )
    if loop_bytes(num_frames, interpolate, height, width) > MEMORY_BUDGET:
        spare = MEMORY_BUDGET // (height * width) - WORKING_BYTES_PER_PIXEL
        longest = max(0, spare // (HELD_BYTES_PER_PIXEL_FRAME * (interpolate + 1)))
        needed = loop_bytes(num_frames, interpolate, height, width) / 2**30
        raise InvalidArgumentError(
            f"{num_frames} frames at {where} need about {needed:.0f} GiB, more than the "
            f"{MEMORY_BUDGET / 2**30:.0f} GiB allowed: give at most {longest} frames at this size, or a smaller --size"
        )


def open_mask(mask: MaskInput) -> PIL.Image.Image:
    """A given mask as a grey picture (white = may move)."""
    from loopanimate.reader import read_mask

    mask = read_mask(mask)
    if mask.getextrema()[1] == 0:
        raise InvalidArgumentError("the mask is empty (all black): paint the object to animate white")
    return mask


def stretch_mask(mask: PIL.Image.Image, size: tuple[int, int], notes: list[str]) -> PIL.Image.Image:
    """A mask of another size than its picture, stretched to `size` (width, height); `notes` says so."""
    if mask.size == size:
        return mask
    notes.append(f"note: the mask is {mask.width}x{mask.height}, resized to the picture's {size[0]}x{size[1]}")
    return mask.resize(size, PIL.Image.BILINEAR)


def fit_mask(
    mask: MaskInput, picture_size: tuple[int, int], fitted: PIL.Image.Image, notes: list[str]
) -> PIL.Image.Image:
    """The mask fitted like the picture: one painted on the picture (same size) is scaled and cropped with it; one of
    another size is stretched to the fitted picture."""
    from loopanimate.image import fit_image

    mask = open_mask(mask)
    if mask.size == picture_size:
        return fit_image(mask, size=(fitted.height, fitted.width))
    return stretch_mask(mask, fitted.size, notes)


def is_auto(mask: MaskInput | None) -> bool:
    return isinstance(mask, str) and mask == "auto"


def salient_alpha(picture: PIL.Image.Image) -> np.ndarray:
    """The automatic mask of a picture (the same for both engines): (H, W) float in [0, 1]."""
    from loopanimate.engines.saliency import salient_mask

    return salient_mask(np.asarray(picture.convert("RGB")))


def automatic_mask(request: LoopRequest, picture: PIL.Image.Image) -> tuple[np.ndarray, str, list[str]]:
    """The automatic mask (H, W) in [0, 1], what it is, and notes: the user's segmentation model's
    (`--mask-model`), or the weight-free salient mask when there is none or it finds nothing."""
    from loopanimate.engines.saliency import fallback_note

    pixels = np.asarray(picture.convert("RGB"))
    salient = salient_alpha(picture)
    if not request.mask_model:
        return salient, "the salient object", fallback_note(pixels, salient)
    from loopanimate.engines.mask_model import model_mask

    mask, name = model_mask(request.mask_model, pixels, salient, request.prompt)
    if mask is None:
        note = f"note: the mask model {request.mask_model} found nothing here: the salient object moves instead"
        return salient, "the salient object", [note]
    return mask, name, [f"mask: {name}, from the mask model {request.mask_model}"]


def _run_motion_engine(request: LoopRequest, image: PIL.Image.Image) -> tuple[np.ndarray, list[str]]:
    from loopanimate.engines import motion_frames, plan_motion
    from loopanimate.engines.brush import check_inside, mean_direction
    from loopanimate.engines.motion import combined_frames
    from loopanimate.engines.prompt import compass, known_motion_words
    from loopanimate.engines.regions import Part, prompt_regions
    from loopanimate.engines.saliency import fallback_note
    from loopanimate.image import fit_image

    picture_size = image.size
    fitted = output_size(request.size, request.crop, picture_size)
    image = fit_image(image, size=fitted)
    if min(image.size) < MIN_SIDE:
        raise InvalidArgumentError(
            f"the picture becomes {image.width}x{image.height}, thinner than {MIN_SIDE} pixels: crop it to a "
            "wallpaper shape, or give --size"
        )
    check_loop_size(request.num_frames, request.interpolate, image.height, image.width)
    notes: list[str] = [size_note(request.size, request.crop, fitted, None)]
    pixels = np.asarray(image.convert("RGB"))
    if request.mask is None and not request.mask_model:  # the prompt's subjects pick what moves
        parts, region_notes = prompt_regions(pixels, request.prompt)
        notes.extend(region_notes)
        if len(parts) == 1 and parts[0].name == "the salient object":
            notes.extend(fallback_note(pixels, parts[0].mask))
    elif request.mask is None or is_auto(request.mask):
        alpha, name, mask_notes = automatic_mask(request, image)
        notes.extend(mask_notes)
        parts = [Part(alpha, request.prompt, name)]
    else:
        alpha = np.asarray(fit_mask(request.mask, picture_size, image, notes), np.float32) / 255.0
        parts = [Part(alpha, request.prompt, "the mask")]
    arrows, anchors = request.brush()
    scale = np.array([image.width / picture_size[0], image.height / picture_size[1]], np.float32)
    for points, name in ((arrows, "arrows"), (anchors, "anchors")):
        if points is not None:
            check_inside(points, picture_size, name)
    loops = [
        motion_frames(
            image,
            part.prompt,
            num_frames=request.num_frames,
            seed=request.seed,
            mask=part.mask,
            motion_strength=request.motion_strength,
            arrows=None if arrows is None else arrows * np.tile(scale, 2),  # into the fitted picture's pixels
            anchors=None if anchors is None else anchors * scale,
            held=part.pins,
        )
        for part in parts
    ]
    frames = combined_frames(pixels, loops)
    alpha = np.max([part.mask for part in parts], axis=0)
    plan = plan_motion(request.prompt)
    described = "; ".join(
        f"{part.name}: {plan_motion(part.prompt).describe(request.num_frames)}"
        if len(parts) > 1
        else plan_motion(part.prompt).describe(request.num_frames)
        for part in parts
    )
    if arrows is not None:  # the brush steers what the prompt's words said: the line says so
        direction = mean_direction(arrows)
        way = compass(direction) if direction else "each its own way"
        described += f"; {len(arrows)} arrow{'s' * (len(arrows) > 1)} steer{'s' * (len(arrows) == 1)} it {way}"
    if anchors is not None:
        described += f"; {len(anchors)} pin{'s' * (len(anchors) > 1)} hold{'s' * (len(anchors) == 1)} still"
    notes.insert(0, f"engine: motion (weight-free), {image.width}x{image.height}: {described}")
    if plan.fallback:
        notes.append(f"note: no motion word in the prompt, so a gentle sway (words known: {known_motion_words()})")
    for word, family in plan.nearest:
        notes.append(f"note: the engine has no '{word}': it makes the nearest motion it has, {family}")
    return frames, alpha, notes


@functools.lru_cache(maxsize=4)
def loaded_pipeline(model: str, device: str, dtype: str = "float32", compile_unet: bool = False, offload: bool = False):
    """A model folder's pipeline, loaded once per (folder, device, dtype, compile, offload) and reused by later
    requests. With `offload`, the weights stay on the CPU and each model visits `device` in turn (diffusers' hooks)."""
    import torch

    from loopanimate.pipelines.loading import load_pipeline

    pipe = load_pipeline(model, device="cpu" if offload else device, dtype=getattr(torch, dtype))
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    if compile_unet:
        pipe.unet.compile_blocks()
    return pipe


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _run_diffusion_engine(
    requests: list[LoopRequest], images: list[PIL.Image.Image], progress: ProgressCallback | None
) -> list[tuple[np.ndarray, list[str]]]:
    import torch

    from loopanimate.export import to_uint8

    first = requests[0]  # every request shares its settings (batch_key)
    masks, notes = _diffusion_masks(requests, images)
    device = first.device or default_device()
    gpu = device.startswith("cuda")
    dtype = first.setting("dtype") or ("float16" if gpu else "float32")
    offload = gpu if first.offload is None else first.offload
    pipe = loaded_pipeline(str(first.model), device, dtype, bool(first.setting("compile")), offload)
    # One size for the batch: the first picture's shape inside the box (batched pictures share a latent size).
    default_box = None if first.size is not None else pipe.default_size()
    height, width = output_size(first.size, first.crop, images[0].size, default_box)
    size_line = size_note(first.size, first.crop, (height, width), default_box)
    check_loop_size(first.num_frames, first.interpolate, height, width)
    result = pipe(
        images,
        [request.prompt for request in requests],
        num_frames=first.num_frames,
        num_inference_steps=first.setting("steps"),
        guidance_scale_image=first.setting("guidance_image"),
        guidance_scale_text=first.setting("guidance_text"),
        negative_prompt=first.setting("negative_prompt"),
        height=height,
        width=width,
        generator=[torch.Generator().manual_seed(request.seed) for request in requests],  # one per loop
        output_type="np",
        callback=progress,
        loop_closure=first.setting("loop_closure"),
        loop_windows=first.setting("loop_windows"),
        motion_strength=first.motion_strength,
        motion_scale=first.setting("motion_scale"),
        mask=None if masks is None else [PIL.Image.fromarray((m * 255).round().astype(np.uint8)) for m in masks],
    )
    if not all(np.isfinite(frames).all() for frames in result.frames):  # damaged weights: NaN all the way through
        raise ModelLoadError(
            f"the model {first.model} made frames that are not numbers (NaN or infinite): its weights are damaged; "
            "convert or download it again"
        )
    note = f"engine: diffusion ({first.model}, {device}), {first.num_frames} frames at {width}x{height}"
    declared = {name: value for name, value in model_sampling(first.model).items() if getattr(first, name) is None}
    if declared:
        settings = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in declared.items())
        note += f"; {settings} (the model folder's {SAMPLING_FILE})"
    return [
        (to_uint8(frames), None if masks is None else mask, [note, size_line, *loop_notes])
        for frames, mask, loop_notes in zip(result.frames, masks or [None] * len(requests), notes, strict=True)
    ]


def _diffusion_masks(
    requests: list[LoopRequest], images: list[PIL.Image.Image]
) -> tuple[list[np.ndarray] | None, list[list[str]]]:
    """Each picture's mask at the picture's size (float, [0, 1]), or None when no request has one (all may move)."""
    notes: list[list[str]] = [[] for _ in requests]
    if all(request.mask is None for request in requests):
        return None, notes
    masks = []
    for request, image, loop_notes in zip(requests, images, notes, strict=True):
        if request.mask is None:
            masks.append(np.ones(image.size[::-1], np.float32))  # this one moves everywhere
        elif is_auto(request.mask):
            alpha, _, mask_notes = automatic_mask(request, image)
            masks.append(alpha)
            loop_notes.extend(mask_notes)
        else:  # the pipeline crops the mask with the picture
            masks.append(np.asarray(stretch_mask(open_mask(request.mask), image.size, loop_notes)) / 255.0)
    return masks, notes
