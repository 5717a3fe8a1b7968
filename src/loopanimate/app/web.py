"""The gradio app: drop a photo, see (and paint) what moves, draw arrows and pins, type a prompt, watch the loop,
download it.

A thin face: every loop is made by `loopanimate.animate.make_loop`, written by `save_loop` and scored by
`evaluation.pixel_metrics`, exactly as the CLI and the batch command do. Every error, an upload's included, shows the
library's one-line message in the page's status line. A job runs on a worker thread that checks the session's Cancel
flag between frames and steps, so a cancelled job stops there, and the next job waits for it (one at a time).
Scripts use one documented `gradio_client` endpoint, `animate`: the photo and the options in, the loop's files out, in
one call through the same functions; the page's own events stay out of the API.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import random
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import PIL.ImageDraw

from loopanimate.animate import (
    DIFFUSION_DEFAULTS,
    MAX_SEED,
    LoopRequest,
    MaskInput,
    make_loop,
    parse_size,
    save_loop,
)
from loopanimate.atomic import atomic_file
from loopanimate.errors import InvalidArgumentError, LoopAnimateError
from loopanimate.pipelines.loop_closure import LOOP_CLOSURES

# The repository's example photos, offered on the page when the app runs from a checkout; an installed wheel has no
# such folder, and the page then shows no examples.
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE_PROMPTS = {"coffee.png": "the coffee cup sways", "cat.png": "the cat breathes gently"}
MOTION = "motion"  # the engine's value, on the page and in the API; diffusion is "diffusion: MODEL"
CSS = ".status-error{color:#b00020} .status-cancelled{color:#8a6d00} .status-done{color:#1b6e20}"
EDITOR_SIDE = 512  # the mask editor's square canvas (gradio's editor misplaces layers on other canvas sizes)
MASK_COLOUR = (255, 48, 48)  # the mask over the photo: what moves
MASK_OPACITY = 0.45  # see-through, so the photo stays visible under the mask and the strokes
ARROW_COLOUR = (255, 214, 0)  # the motion brush's arrows: yellow, outlined in black to show on any photo
PIN_COLOUR = (0, 200, 255)  # its pins: cyan, unlike the arrows and the red mask
DOWNLOADS = ("mp4", "gif", "webp")  # MP4 always (the page plays it); GIF and WebP when ticked
# The library's defaults, which the page's fields and the API's start from.
LOOP_DEFAULTS = {field.name: field.default for field in fields(LoopRequest)}
# What the API does not ask for, as the library would have it.
API_DEFAULTS = {"interpolate": LOOP_DEFAULTS["interpolate"], **DIFFUSION_DEFAULTS}
API_HELP = (
    "One loop in one call: photo (a file) and prompt in, with engine, size, crop, frames, seed, fps, motion, an "
    "optional mask file (white moves), formats (gif, webp; MP4 always), and the motion engine's arrows "
    '("x1,y1>x2,y2;...") and anchors ("x,y;..."), in the photo\'s pixels; out: the files (MP4 first) and the report'
)
SCORE_SIDE = 640  # the MP4 is read back at this long side for the scores, the sheet and the before/after
SIZES = [
    ("The photo's own", ""),
    ("Phone 1080×1920", "phone"),
    ("Desktop 1920×1080", "desktop"),
    ("4K 3840×2160", "4k"),
    ("512×512", "512"),
]
CLOSURE_HELP = (
    "cycle: the frames are denoised as a circle, so the last flows into the first (any length) · none: the model "
    "alone, as the paper (at most the model's length) · condition: the picture conditions the last frame too"
)
SEAM_HELP = (
    "Seam: the jump from the last frame back to the first over a typical step; at or below 1 it is as smooth as any "
    "other step (lower is smoother), above about 1.5 it shows"
)

# Offline by design: no usage analytics, no version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
log = logging.getLogger(__name__)


def engine_choices(models: list[str]) -> list[tuple[str, str]]:
    """The motion engine, then one diffusion entry per model folder, as (label, value)."""
    diffusion = [f"diffusion: {model}" for model in models]
    return [("motion (no weights)", MOTION), *zip(diffusion, diffusion, strict=True)]


def editor_picture(picture: PIL.Image.Image) -> PIL.Image.Image:
    """The picture as the editor shows it: the long side at EDITOR_SIDE."""
    from loopanimate.image import fit_image

    scale = EDITOR_SIDE / max(picture.size)
    return fit_image(picture, size=(max(1, round(picture.height * scale)), max(1, round(picture.width * scale))))


def letterbox(picture: PIL.Image.Image) -> tuple[int, int]:
    """Where the editor's picture sits on the square canvas: its top-left corner, centred."""
    return (EDITOR_SIDE - picture.width) // 2, (EDITOR_SIDE - picture.height) // 2


def mask_layer(alpha: np.ndarray, picture: PIL.Image.Image) -> PIL.Image.Image:
    """A mask (H, W) > 0 as the editor's see-through red layer, placed over the picture on the canvas."""
    layer = PIL.Image.new("RGBA", (EDITOR_SIDE, EDITOR_SIDE), (0, 0, 0, 0))
    opacity = (alpha > 0).astype(np.uint8) * round(255 * MASK_OPACITY)
    colour = np.full((*alpha.shape, 3), MASK_COLOUR, np.uint8)
    layer.paste(PIL.Image.fromarray(np.dstack([colour, opacity]), "RGBA"), letterbox(picture))
    return layer


def editor_value(picture: PIL.Image.Image | None) -> dict | None:
    """The mask editor for a picture: the picture, centred on the square canvas (the letterbox grey), under the
    automatic salient mask as a see-through layer to paint on and erase."""
    from loopanimate.engines.saliency import salient_mask

    if picture is None:
        return None
    shown = editor_picture(picture)
    background = PIL.Image.new("RGB", (EDITOR_SIDE, EDITOR_SIDE), (128, 128, 128))
    background.paste(shown, letterbox(shown))
    alpha = salient_mask(np.asarray(shown)) > 0.5
    return {"background": background, "layers": [mask_layer(alpha, shown)], "composite": None}


def painted_mask(editor: dict | None, picture: PIL.Image.Image) -> np.ndarray | None:
    """White where the editor's layer is painted, at the picture's own size: the automatic mask with the user's
    strokes and erasures. Strokes on the grey letterbox are cut away."""
    if not editor or not editor.get("layers"):
        return None
    alpha = np.asarray(editor["layers"][0].convert("RGBA"))[..., 3]  # (canvas, canvas)
    shown = editor_picture(picture)
    left, top = letterbox(shown)
    cut = (alpha[top : top + shown.height, left : left + shown.width] > 0).astype(np.uint8) * 255
    return np.asarray(PIL.Image.fromarray(cut).resize(picture.size, PIL.Image.NEAREST))


def brush_point(index: list[int], picture: PIL.Image.Image) -> tuple[int, int]:
    """A click on the brush's picture in the input picture's pixels. gradio gives the clicked pixel of the picture
    it was sent (the editor-sized copy), however the browser scales it on screen."""
    shown = editor_picture(picture)
    x, y = index
    return round(x * picture.width / shown.width), round(y * picture.height / shown.height)


def brush_text(values: dict, key: str) -> str | None:
    """The brush's arrows or anchors as given, None when empty. Inline only: a .json name would read the server's
    own files."""
    text = str(values[key] or "").strip()
    if text.lower().endswith(".json"):
        raise InvalidArgumentError(f"{key} {text!r}: the app takes them inline, not as a file on the server")
    return text or None


def add_stroke(text: str | None, stroke: str) -> str:
    """`stroke` appended to the brush's text, `;` between strokes."""
    text = str(text or "").strip().rstrip(";")
    return f"{text};{stroke}" if text else stroke


def brush_view(
    picture: PIL.Image.Image, arrows: str | None, anchors: str | None, tail: tuple[int, int] | None
) -> PIL.Image.Image:
    """The photo as the editor shows it, with the brush's arrows, pins and a pending arrow's tail (input picture's
    pixels) drawn over it. The library parses the text, so a typed mistake raises its one-line error."""
    from loopanimate.engines.brush import parse_anchors, parse_arrows

    shown = editor_picture(picture).convert("RGB")
    scale = np.array([shown.width / picture.width, shown.height / picture.height], np.float32)
    draw = PIL.ImageDraw.Draw(shown)
    for x1, y1, x2, y2 in parse_arrows(arrows) * np.tile(scale, 2) if arrows else []:
        along = np.array([x2 - x1, y2 - y1]) / max(1e-6, float(np.hypot(x2 - x1, y2 - y1)))
        across = np.array([-along[1], along[0]])
        head = np.array([x2, y2])
        barbs = [tuple(head), tuple(head - 14 * along + 7 * across), tuple(head - 14 * along - 7 * across)]
        draw.line([(x1, y1), (x2, y2)], fill=(0, 0, 0), width=6)
        draw.line([(x1, y1), (x2, y2)], fill=ARROW_COLOUR, width=3)
        draw.polygon(barbs, fill=ARROW_COLOUR, outline=(0, 0, 0))
    for x, y in parse_anchors(anchors) * scale if anchors else []:
        draw.ellipse([x - 7, y - 7, x + 7, y + 7], fill=PIN_COLOUR, outline=(0, 0, 0), width=2)
    if tail is not None:
        x, y = np.asarray(tail) * scale
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=ARROW_COLOUR, outline=(0, 0, 0), width=2)
    return shown


def open_upload(path: str | None) -> PIL.Image.Image | None:
    """The uploaded photo through the library's one reader (orientation, bit depth, alpha, size limit)."""
    from loopanimate.reader import read_picture

    return None if not path else read_picture(path, what="the uploaded file")


def upload_message(error: LoopAnimateError, *paths: str | None) -> str:
    """The library's one line, naming each uploaded file by its own name rather than gradio's cache folder."""
    message = str(error)
    for path in filter(None, paths):
        message = message.replace(str(path), Path(path).name)
    return message


def number(values: dict, key: str, kind: type = float):
    """A form value as a number, or one line naming the field (the page's widgets and API callers alike)."""
    try:
        value = kind(values[key])
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(f"{key.replace('_', ' ')} {values[key]!r} is not a number: give one") from None
    if kind is int and value != float(values[key]):
        raise InvalidArgumentError(f"{key.replace('_', ' ')} {values[key]!r} is not a whole number: give one")
    return value


def loop_request(values: dict, picture: PIL.Image.Image, mask: MaskInput | None, engines: list[str]) -> LoopRequest:
    """The form as the library's request, with `mask` (the painted one, or an API caller's file; both engines) and
    the brush's arrows and anchors (the motion engine's: the library refuses them for diffusion). `engines` are the
    engine values served here (an API caller may send any text)."""
    engine = str(values["engine"])
    if engine not in engines:
        raise InvalidArgumentError(f"engine {engine!r} is not served here: give one of {', '.join(engines)}")
    motion = engine == MOTION
    size = str(values["size"] or "").strip()
    request = LoopRequest(
        image=picture,
        prompt=str(values["prompt"] or ""),
        engine="motion" if motion else "diffusion",
        model=None if motion else engine.removeprefix("diffusion: "),
        mask=mask,
        num_frames=number(values, "frames", int),
        seed=number(values, "seed", int),
        size=parse_size(size) if size else None,
        crop=bool(values["crop"]),
        fps=number(values, "fps"),
        motion_strength=number(values, "motion"),
        interpolate=number(values, "interpolate", int),
        arrows=brush_text(values, "arrows"),
        anchors=brush_text(values, "anchors"),
    )
    if not motion:
        request.steps = number(values, "steps", int)
        request.guidance_text = number(values, "guidance_text")
        request.guidance_image = number(values, "guidance_image")
        request.negative_prompt = str(values["negative_prompt"] or "")
        request.loop_closure = values["loop_closure"]
    return request


class JobCancelled(Exception):
    """The user pressed Cancel: the job stops at the next frame or step."""


class Jobs:
    """Each browser session's running job: its Cancel flag."""

    def __init__(self) -> None:
        self.flags: dict[str, threading.Event] = {}

    def start(self, session: str) -> threading.Event:
        self.flags[session] = flag = threading.Event()
        return flag

    def cancel(self, session: str) -> bool:
        flag = self.flags.get(session)
        if flag is not None:
            flag.set()
        return flag is not None

    def finish(self, session: str) -> None:
        self.flags.pop(session, None)


@dataclass
class Made:
    """What one job made, for the page."""

    files: list[str]  # the MP4 first, then GIF and WebP if asked for
    sheet: str  # the contact sheet PNG
    before_after: tuple[PIL.Image.Image, PIL.Image.Image]  # the photo, the loop's most moved frame
    report: str  # engine, frames, Seam and Motion, the library's notes


def make_files(
    request: LoopRequest,
    formats: list[str],
    stem: str,
    folder: Path,
    flag: threading.Event,
    report: Callable[[str], None],
) -> Made:
    """Make the loop and its files (MP4 and the ticked `formats`) in `folder`, telling `report` each step or frame;
    stop if `flag` is set. Scores, sheet and before/after come from the MP4 read back, as `evaluate` would see it."""
    unknown = [fmt for fmt in formats if fmt not in DOWNLOADS]
    if unknown:  # the page offers only these; an API caller may send anything
        raise InvalidArgumentError(
            f"format {unknown[0]!r} is not offered: give {' or '.join(DOWNLOADS[1:])} (MP4 always)"
        )
    from loopanimate.contact_sheet import contact_sheet
    from loopanimate.evaluation.pixel_metrics import loop_scores
    from loopanimate.export import read_video

    def step(done: int, total: int) -> None:
        if flag.is_set():
            raise JobCancelled
        report(f"denoising: step {done} of {total}")

    loop = make_loop(request, progress=step)
    files = []
    for fmt in ["mp4", *(fmt for fmt in DOWNLOADS[1:] if fmt in formats)]:

        def frame(done: int, total: int, fmt: str = fmt) -> None:
            if flag.is_set():
                raise JobCancelled
            report(f"making and encoding the {fmt.upper()}: frame {done} of {total}")

        path = folder / f"{stem}-loop.{fmt}"
        save_loop(loop, path, progress=frame)
        files.append(str(path))
    report("scoring the loop")
    shown, _ = read_video(files[0], max_side=SCORE_SIDE)  # the seam frame is not in the file
    scores = loop_scores(np.concatenate([shown, shown[:1]]))
    sheet = folder / f"{stem}-contact-sheet.png"
    with atomic_file(sheet) as tmp:
        contact_sheet(shown, columns=6, every=max(1, len(shown) // 12)).save(tmp, format="PNG")
    steps = [float(np.abs(frame.astype(np.int16) - shown[0]).mean()) for frame in shown]
    seam = "n/a (still)" if scores["seam"] is None else f"{scores['seam']:.2f}"
    text = (
        f"**{loop.engine}** · {len(shown)} frames at {loop.fps:g} fps · **Seam {seam}** · "
        f"Motion {scores['motion']:.2f} px/frame\n\n{SEAM_HELP}.\n\n" + "\n\n".join(loop.notes)
    )
    before = PIL.Image.fromarray(shown[0])
    return Made(files, str(sheet), (before, PIL.Image.fromarray(shown[int(np.argmax(steps))])), text)


def run_job(work: Callable[[Callable[[str], None]], Made]) -> Iterator[str | Made | BaseException]:
    """Run `work(report)` on a worker thread; yield each report as it comes, then the result or the exception."""
    messages: queue.Queue = queue.Queue()
    outcome: list = []

    def target() -> None:
        try:
            outcome.append(work(messages.put))
        except BaseException as error:  # handed to the page, whatever it is
            outcome.append(error)
        finally:
            messages.put(None)

    worker = threading.Thread(target=target, name="loopanimate-job", daemon=True)
    worker.start()
    while (message := messages.get()) is not None:
        while not messages.empty():  # only the newest of a burst
            newer = messages.get()
            if newer is None:
                messages.put(None)
                break
            message = newer
        yield message
    worker.join()
    yield outcome[0]


def status_line(kind: str, text: str) -> str:
    """The page's status line: ready, working, done, cancelled or error, with one line of text."""
    return f'<div class="status status-{kind}" id="status-{kind}"><b>{kind}</b> · {text}</div>'


def build_app(models: list[str] | None = None, work_root: str | None = None):
    """The gradio Blocks app over `models` (LoopAnimate model folders; none: the motion engine alone). Each job's
    files are written under `work_root` and removed once the page has them."""
    models = list(models or [])
    engines = engine_choices(models)
    engine_values = [value for _, value in engines]
    root = Path(work_root or tempfile.mkdtemp(prefix="loopanimate-app-"))
    jobs = Jobs()
    with gr.Blocks(title="LoopAnimate", analytics_enabled=False, delete_cache=(600, 600)) as app:
        gr.Markdown("# LoopAnimate\nA photo and a prompt in, a seamless loop of its salient object out.")
        picture = gr.State(None)  # the uploaded photo, read by the library's reader
        made = gr.State([])  # the loops made since the page opened: (GIF path, caption)
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Photo (PNG, JPEG, WebP)", file_types=["image"], type="filepath",
                                 elem_id="picture")  # fmt: skip
                editor = gr.ImageEditor(
                    label="What moves (red): paint to add, erase to remove",
                    type="pil",
                    sources=[],
                    layers=False,
                    canvas_size=(EDITOR_SIDE, EDITOR_SIDE),
                    transforms=[],
                    brush=gr.Brush(colors=[("#ff3030", MASK_OPACITY)], color_mode="fixed", default_size=24),
                    eraser=gr.Eraser(default_size=24),
                    elem_id="mask-editor",
                    interactive=True,
                )
                with gr.Row():
                    reset = gr.Button("Reset to the automatic mask", size="sm", elem_id="reset-mask")
                    save_mask = gr.Button("Save the mask as a PNG", size="sm", elem_id="save-mask")
                mask_file = gr.File(label="Mask (white moves)", visible=False, elem_id="mask-file")
                with gr.Accordion("Motion brush (motion engine): arrows say which way, pins hold still", open=True):
                    brush_mode = gr.Radio([("Arrow: click its tail, then its head", "arrow"),
                                           ("Pin: click what stays still", "pin")], value="arrow",
                                          show_label=False, elem_id="brush-mode")  # fmt: skip
                    brush = gr.Image(label="Click the photo to draw", type="pil", format="png", interactive=False,
                                     buttons=[], elem_id="brush")  # fmt: skip
                    tail = gr.State(None)  # an arrow's tail, clicked, waiting for its head (picture pixels)
                    with gr.Row():
                        arrows = gr.Textbox(label="Arrows (the photo's pixels)", placeholder="x1,y1>x2,y2;...",
                                            elem_id="arrows")  # fmt: skip
                        anchors = gr.Textbox(label="Pins (the photo's pixels)", placeholder="x,y;...",
                                             elem_id="anchors")  # fmt: skip
                    clear_brush = gr.Button("Clear the arrows and pins", size="sm", elem_id="clear-brush")
                prompt = gr.Textbox(label="Prompt", placeholder="the cup sways gently", elem_id="prompt")
                engine = gr.Radio(engines, value=engine_values[-1], label="Engine", elem_id="engine")
                with gr.Row():
                    frames = gr.Slider(3, 140, value=LOOP_DEFAULTS["num_frames"], step=1, label="Frames")
                    motion = gr.Slider(
                        0.0,
                        1.0,
                        value=LOOP_DEFAULTS["motion_strength"],
                        step=0.05,
                        label="Motion strength",
                        info="0: still",
                    )
                with gr.Row():
                    seed = gr.Number(value=LOOP_DEFAULTS["seed"], precision=0, label="Seed", info=f"0 to {MAX_SEED}")
                    random_seed = gr.Button("Random seed", size="sm")
                with gr.Row():
                    size = gr.Dropdown(SIZES, value="", allow_custom_value=True, label="Size",
                                       info="the photo's own: long side at most 1024; presets turn to the photo; or "
                                       "type N or WIDTHxHEIGHT (multiples of 8)", elem_id="size")  # fmt: skip
                    crop = gr.Checkbox(
                        LOOP_DEFAULTS["crop"], label="Crop to fill the size", info="else the photo fits inside it"
                    )
                with gr.Row():
                    fps = gr.Number(value=LOOP_DEFAULTS["fps"], label="Frames per second")
                    interpolate = gr.Slider(
                        0, 7, value=LOOP_DEFAULTS["interpolate"], step=1, label="Smoother: frames between each pair"
                    )
                with gr.Accordion("Advanced (diffusion)", open=False, visible=bool(models)):
                    loop_closure = gr.Radio(list(LOOP_CLOSURES), value=LOOP_CLOSURES[0], label="Loop closure",
                                            info=CLOSURE_HELP)  # fmt: skip
                    steps = gr.Slider(1, 100, value=DIFFUSION_DEFAULTS["steps"], step=1, label="Steps")
                    guidance_text = gr.Number(value=DIFFUSION_DEFAULTS["guidance_text"], label="Text guidance",
                                              info="how strongly the prompt steers; 1 = not amplified")  # fmt: skip
                    guidance_image = gr.Number(value=DIFFUSION_DEFAULTS["guidance_image"], label="Image guidance",
                                               info="1 = off: the photo conditions the model but is not amplified; "
                                               "above 1 keeps frames closer to the photo")  # fmt: skip
                    negative_prompt = gr.Textbox(value="", label="Negative prompt")
                formats = gr.CheckboxGroup([("GIF", "gif"), ("WebP", "webp")], value=["gif", "webp"], label="Also as",
                                           info="MP4 always; GIF and WebP take longer for long loops",
                                           elem_id="formats")  # fmt: skip
                with gr.Row():
                    run = gr.Button("Animate", variant="primary", elem_id="animate")
                    cancel = gr.Button("Cancel", elem_id="cancel")
            with gr.Column():
                status = gr.HTML(status_line("ready", "drop a photo to start"), elem_id="status")
                video = gr.Video(label="Loop", autoplay=True, loop=True, elem_id="loop-video")
                before_after = gr.ImageSlider(label="Before / after (the photo, the most moved frame)",
                                              type="pil", elem_id="before-after")  # fmt: skip
                downloads = gr.File(label="Downloads", file_count="multiple", elem_id="downloads")
                scores = gr.Markdown(elem_id="scores")
                gr.Markdown("**Contact sheet** (every few frames, numbered)")
                sheet = gr.Image(show_label=False, type="filepath", elem_id="contact-sheet")
                gallery = gr.Gallery(label="Loops made since this page opened", columns=4,
                                     allow_preview=False, object_fit="contain", elem_id="gallery")  # fmt: skip
        form = {
            "editor": editor, "prompt": prompt, "engine": engine, "frames": frames, "motion": motion, "seed": seed,
            "size": size, "crop": crop, "fps": fps, "interpolate": interpolate, "loop_closure": loop_closure,
            "steps": steps, "guidance_text": guidance_text, "guidance_image": guidance_image,
            "negative_prompt": negative_prompt, "arrows": arrows, "anchors": anchors,
        }  # fmt: skip
        results = [status, video, before_after, downloads, scores, sheet, gallery, made]

        def on_upload(path):
            # A new photo starts the brush afresh: the old strokes were in the old photo's pixels.
            try:
                photo = open_upload(path)
            except LoopAnimateError as error:
                return None, None, None, "", "", None, status_line("error", upload_message(error, path))
            if photo is None:
                return None, None, None, "", "", None, status_line("ready", "drop a photo to start")
            note = f"{Path(path).name}, {photo.width}x{photo.height}: paint what moves, type a prompt, Animate"
            view = brush_view(photo, None, None, None)
            return photo, editor_value(photo), view, "", "", None, status_line("ready", note)

        def redraw(photo, arrows_text: str, anchors_text: str, start: tuple[int, int] | None) -> list:
            """The brush's picture, text and tail, and the status: what is drawn, or the library's one line."""
            if photo is None:  # nothing to draw on yet; the text waits for a photo
                return [None, arrows_text, anchors_text, None, gr.skip()]
            try:
                texts = {"arrows": arrows_text, "anchors": anchors_text}
                view = brush_view(photo, brush_text(texts, "arrows"), brush_text(texts, "anchors"), start)
            except LoopAnimateError as error:
                return [gr.skip(), arrows_text, anchors_text, start, status_line("error", str(error))]
            note = "click the arrow's head" if start is not None else "click to draw more, or Animate"
            return [view, arrows_text, anchors_text, start, status_line("ready", f"motion brush: {note}")]

        def on_brush_click(photo, mode: str, arrows_text: str, anchors_text: str, start, event: gr.SelectData):
            # The brush shows a picture only once a photo is read, so `photo` is there.
            point = brush_point(event.index, photo)
            if mode == "pin":
                anchors_text = add_stroke(anchors_text, f"{point[0]},{point[1]}")
            elif start is None:
                start = point
            else:
                arrows_text, start = add_stroke(arrows_text, f"{start[0]},{start[1]}>{point[0]},{point[1]}"), None
            return redraw(photo, arrows_text, anchors_text, start)

        def on_save_mask(editor_state, photo, request: gr.Request):
            if photo is None:
                return gr.update(visible=False), status_line("error", "no photo: drop one first")
            mask = painted_mask(editor_state, photo)
            if mask is None:
                return gr.update(visible=False), status_line("error", "no mask to save: paint what moves first")
            path = root / f"mask-{request.session_hash}.png"
            with atomic_file(path) as tmp:
                PIL.Image.fromarray(mask, "L").save(tmp, format="PNG")
            return gr.update(value=str(path), visible=True), status_line("ready", "the mask is ready to download")

        def on_animate(data: dict, request: gr.Request):
            # A set of inputs arrives as one {component: value} dict (gradio injects `request` only beside it).
            values = {name: data[component] for name, component in form.items()}
            photo, upload_path, gallery_items = data[picture], data[upload], data[made]
            wanted = list(data[formats] or [])
            skip = [gr.skip()] * (len(results) - 1)
            if photo is None:
                yield [status_line("error", "no picture: drop a PNG, JPEG or WebP photo in the Photo box"), *skip]
                return
            try:
                loop_request_ = loop_request(values, photo, painted_mask(values["editor"], photo), engine_values)
                loop_request_.check()
            except LoopAnimateError as error:
                yield [status_line("error", str(error)), *skip]
                return
            session = request.session_hash
            flag = jobs.start(session)
            folder = Path(tempfile.mkdtemp(prefix="job-", dir=root))
            stem = Path(upload_path).stem if upload_path else "loop"
            try:
                for outcome in run_job(lambda report: make_files(loop_request_, wanted, stem, folder, flag, report)):
                    if isinstance(outcome, str):
                        yield [status_line("working", outcome), *skip]
                    elif isinstance(outcome, Made):
                        gallery_path = root / f"gallery-{session}-{len(gallery_items)}.png"
                        with atomic_file(gallery_path) as tmp:
                            shutil.copyfile(outcome.sheet, tmp)
                        items = [(str(gallery_path), f"{stem}: {values['prompt']}"), *gallery_items]
                        kinds = ", ".join(Path(file).suffix[1:].upper() for file in outcome.files)
                        yield [status_line("done", f"{stem}-loop: {kinds} ready"),
                               outcome.files[0], outcome.before_after, outcome.files, outcome.report, outcome.sheet,
                               items, items]  # fmt: skip
                    elif isinstance(outcome, JobCancelled):
                        yield [status_line("cancelled", "stopped; nothing was kept"), None, None, None, "", None,
                               gr.skip(), gr.skip()]  # fmt: skip
                    elif isinstance(outcome, LoopAnimateError):
                        yield [status_line("error", str(outcome)), *skip]
                    else:
                        log.error("a job failed", exc_info=outcome)
                        yield [status_line("error", f"internal error ({outcome.__class__.__name__}); see the "
                                           "server's log"), *skip]  # fmt: skip
            finally:
                jobs.finish(session)
                shutil.rmtree(folder, ignore_errors=True)  # the page has its own copies by now

        def on_cancel(request: gr.Request):
            if jobs.cancel(request.session_hash):
                return status_line("working", "cancelling: the job stops at the next frame or step")
            return status_line("ready", "nothing is running")

        def on_api(
            photo: str | None,
            prompt: str,
            engine: str,
            size: str,
            crop: bool,
            frames: float,
            seed: float,
            fps: float,
            motion: float,
            mask: str | None = None,  # None: the API's mask is optional (gradio reads this default)
            formats: list[str] | None = None,
            arrows: str = "",
            anchors: str = "",
        ) -> Iterator[tuple[list[str], str]]:
            # A generator, so the job folder goes only once gradio has copied the files out (after the yield).
            folder = Path(tempfile.mkdtemp(prefix="api-", dir=root))
            try:
                try:
                    opened = open_upload(photo)
                    if opened is None:
                        raise InvalidArgumentError("no photo: give a PNG, JPEG or WebP file as `photo`")
                    given = {"prompt": prompt, "engine": engine, "size": size, "crop": crop, "frames": frames,
                             "seed": seed, "fps": fps, "motion": motion, "arrows": arrows,
                             "anchors": anchors}  # fmt: skip
                    request_ = loop_request({**API_DEFAULTS, **given}, opened, mask, engine_values)
                    stem = Path(photo).stem
                    # An API caller's formats="gif" is one format, not the letters g, i, f.
                    wanted = [formats] if isinstance(formats, str) else list(formats or [])
                    outcome = make_files(request_, wanted, stem, folder, threading.Event(), log.debug)
                except LoopAnimateError as error:
                    raise gr.Error(upload_message(error, photo, mask), print_exception=False) from None
                yield outcome.files, outcome.report
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        # The page's own events are private: the API lists `animate` alone. A loop at a time, page and API together
        # (one concurrency group under the queue's limit, set in `serve`): a model never runs two.
        private = {"api_visibility": "private"}
        upload.change(on_upload, upload, [picture, editor, brush, arrows, anchors, tail, status], **private)
        brush_outputs = [brush, arrows, anchors, tail, status]
        brush.select(on_brush_click, [picture, brush_mode, arrows, anchors, tail], brush_outputs, **private)
        for typed in (arrows.submit, arrows.blur, anchors.submit, anchors.blur):
            typed(redraw, [picture, arrows, anchors, tail], brush_outputs, **private)
        clear_brush.click(lambda photo: redraw(photo, "", "", None), picture, brush_outputs, **private)
        reset.click(lambda photo: editor_value(photo), picture, editor, **private)
        save_mask.click(on_save_mask, [editor, picture], [mask_file, status], **private)
        random_seed.click(lambda: random.randint(0, MAX_SEED), None, seed, **private)
        run.click(on_animate, {picture, upload, made, formats, *form.values()}, results, concurrency_id="loop",
                  **private)  # fmt: skip
        cancel.click(on_cancel, None, status, queue=False, **private)
        with gr.Column(visible=False):  # the API's own fields, without the page's bounds: the library judges values
            api_inputs = [
                gr.File(type="filepath", label="photo"),
                gr.Textbox("", label="prompt"),
                gr.Textbox(engine_values[-1], label="engine"),
                gr.Textbox("", label="size"),
                gr.Checkbox(LOOP_DEFAULTS["crop"], label="crop"),
                gr.Number(LOOP_DEFAULTS["num_frames"], label="frames"),
                gr.Number(LOOP_DEFAULTS["seed"], label="seed"),
                gr.Number(LOOP_DEFAULTS["fps"], label="fps"),
                gr.Number(LOOP_DEFAULTS["motion_strength"], label="motion"),
                gr.File(type="filepath", label="mask"),
                gr.Dropdown(list(DOWNLOADS[1:]), value=[], multiselect=True, allow_custom_value=True, label="formats"),
                gr.Textbox("", label="arrows"),
                gr.Textbox("", label="anchors"),
            ]
            api_outputs = [gr.File(file_count="multiple", label="files"), gr.Markdown(label="report")]
        gr.on([], on_api, api_inputs, api_outputs, api_name="animate", api_description=API_HELP, concurrency_id="loop")
        examples = [
            [str(EXAMPLES / name), text] for name, text in EXAMPLE_PROMPTS.items() if (EXAMPLES / name).is_file()
        ]
        if examples:
            gr.Examples(examples, [upload, prompt], label="Examples: click one, then Animate", api_visibility="private")
    return app


def serve(models: list[str], host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the app on `host:port` until interrupted; never shared to the internet. Job files go when served, and
    the app's folder when it stops."""
    root = tempfile.mkdtemp(prefix="loopanimate-app-")
    atexit.register(shutil.rmtree, root, True)
    app = build_app(models, work_root=root)
    try:
        app.queue(default_concurrency_limit=1).launch(
            server_name=host,
            server_port=port,
            share=False,
            ssr_mode=False,
            mcp_server=False,
            footer_links=[],
            quiet=True,
            css=CSS,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
