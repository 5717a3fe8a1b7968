"""The gradio app: drop a photo, see (and paint) what moves, type a prompt, watch the loop, download it.

A thin face: every loop is made by `loopanimate.animate.make_loop` and scored by `evaluation.pixel_metrics`, exactly
as the CLI and the batch command do; a bad input shows the library's one-line message as a `gr.Error`.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image

from loopanimate.animate import (
    DIFFUSION_DEFAULTS,
    MAX_SEED,
    MOTION_MAX_SIDE,
    LoopRequest,
    make_loop,
    parse_size,
    save_loop,
)
from loopanimate.errors import LoopAnimateError
from loopanimate.pipelines.loop_closure import LOOP_CLOSURES

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE_PROMPTS = {"coffee.png": "the coffee cup sways", "cat.png": "the cat breathes gently"}
MOTION = "motion (no weights)"
MASK_COLOUR = (255, 48, 48)  # the painted mask: what moves
DOWNLOADS = ("mp4", "gif", "webp")

# Offline by design: no usage analytics, no version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def engine_choices(models: list[str]) -> list[str]:
    """The motion engine, then one diffusion entry per model folder."""
    return [MOTION, *(f"diffusion: {model}" for model in models)]


def fitted_picture(picture: PIL.Image.Image | None) -> PIL.Image.Image | None:
    """The picture as the motion engine sees it (long side at most 512), so the painted mask lines up with it."""
    from loopanimate.image import fit_image
    from loopanimate.reader import read_picture

    return None if picture is None else fit_image(read_picture(picture), max_side=MOTION_MAX_SIDE)


def letterbox(picture: PIL.Image.Image) -> tuple[int, int]:
    """Where the picture sits on the editor's square canvas: its top-left corner, centred."""
    return (MOTION_MAX_SIDE - picture.width) // 2, (MOTION_MAX_SIDE - picture.height) // 2


def editor_value(picture: PIL.Image.Image | None) -> dict | None:
    """The mask editor for a new picture: the picture, centred on the square canvas, under the automatic salient mask
    as a translucent layer to paint on. (The editor places layers on its canvas, so the canvas is never resized.)"""
    from loopanimate.engines.saliency import salient_mask

    picture = fitted_picture(picture)
    if picture is None:
        return None
    corner = letterbox(picture)
    background = PIL.Image.new("RGB", (MOTION_MAX_SIDE, MOTION_MAX_SIDE), (128, 128, 128))
    background.paste(picture, corner)
    alpha = (salient_mask(np.asarray(picture)) > 0.5).astype(np.uint8) * 140  # (H, W)
    layer = PIL.Image.new("RGBA", background.size, (0, 0, 0, 0))
    layer.paste(
        PIL.Image.fromarray(np.dstack([np.full((*alpha.shape, 3), MASK_COLOUR, np.uint8), alpha]), "RGBA"), corner
    )
    return {"background": background, "layers": [layer], "composite": None}


def painted_mask(editor: dict | None, picture: PIL.Image.Image) -> np.ndarray | None:
    """White where the editor's layer is painted, cut back to the picture: the automatic mask with the user's strokes
    and erasures."""
    if not editor or not editor.get("layers"):
        return None
    alpha = np.asarray(editor["layers"][0].convert("RGBA"))[..., 3]  # (canvas, canvas)
    left, top = letterbox(picture)
    return (alpha[top : top + picture.height, left : left + picture.width] > 0).astype(np.uint8) * 255


def loop_request(values: dict, models: list[str]) -> LoopRequest:
    """The form as the library's request: the picture as the editor shows it, with the painted mask (both engines)."""
    engine = values["engine"]
    motion = engine == MOTION
    size = values["size"].strip()
    picture = fitted_picture(values["picture"])
    request = LoopRequest(
        image=picture,
        prompt=values["prompt"],
        engine="motion" if motion else "diffusion",
        model=None if motion else engine.removeprefix("diffusion: "),
        mask=painted_mask(values["editor"], picture),
        num_frames=int(values["frames"]),
        seed=int(values["seed"]),
        size=parse_size(size) if size else None,
        fps=float(values["fps"]),
        motion_strength=float(values["motion"]),
        interpolate=int(values["interpolate"]),
    )
    if not motion:
        request.steps = int(values["steps"])
        request.guidance_text = float(values["guidance_text"])
        request.guidance_image = float(values["guidance_image"])
        request.negative_prompt = values["negative_prompt"]
        request.loop_closure = values["loop_closure"]
    return request


def animate(values: dict, models: list[str], progress) -> tuple[str, list[str], str, str]:
    """Make the loop; return the MP4 to play, the files to download, the contact sheet and the scores."""
    import gradio as gr

    from loopanimate.contact_sheet import contact_sheet
    from loopanimate.evaluation.pixel_metrics import loop_scores

    if values["picture"] is None:
        raise gr.Error("no picture: drop a photo in the picture box first (PNG, JPEG or WebP)")
    try:
        request = loop_request(values, models)
        progress(0, desc="making the loop")
        loop = make_loop(request, progress=lambda step, total: progress((step, total), desc="denoising"))
        folder = Path(tempfile.mkdtemp(prefix="loopanimate-"))
        files = [str(folder / f"loop.{fmt}") for fmt in DOWNLOADS]
        for path in files:
            save_loop(loop, path)
        sheet = folder / "contact-sheet.png"
        contact_sheet(loop.frames[:-1], columns=6, every=max(1, (len(loop.frames) - 1) // 12)).save(sheet)
    except LoopAnimateError as error:
        raise gr.Error(str(error)) from None
    scores = loop_scores(loop.frames)
    seam = "n/a (still)" if scores["seam"] is None else f"{scores['seam']:.2f}"
    report = (
        f"**{loop.engine}** · {len(loop.frames) - 1} frames at {loop.fps:g} fps · Seam {seam} (≈ 1: invisible) · "
        f"Motion {scores['motion']:.2f} px/frame\n\n" + "\n\n".join(loop.notes)
    )
    return files[0], files, str(sheet), report


def build_app(models: list[str] | None = None):
    """The gradio Blocks app over `models` (LoopAnimate model folders; none: the motion engine alone)."""
    import gradio as gr

    models = list(models or [])
    engines = engine_choices(models)
    with gr.Blocks(title="LoopAnimate", analytics_enabled=False) as app:
        gr.Markdown("# LoopAnimate\nA photo and a prompt in, a seamless loop of its salient object out.")
        with gr.Row():
            with gr.Column():
                picture = gr.Image(label="Picture", type="pil", sources=["upload", "clipboard"], elem_id="picture")
                editor = gr.ImageEditor(
                    label="What moves: the automatic mask in red; paint to add, erase to remove",
                    type="pil",
                    sources=[],
                    layers=False,
                    canvas_size=(MOTION_MAX_SIDE, MOTION_MAX_SIDE),
                    transforms=[],
                    brush=gr.Brush(colors=["#ff3030"], color_mode="fixed", default_size=24),
                    eraser=gr.Eraser(default_size=24),
                    elem_id="mask-editor",
                    interactive=True,
                )
                prompt = gr.Textbox(label="Prompt", placeholder="the cup sways gently", elem_id="prompt")
                engine = gr.Radio(engines, value=engines[-1], label="Engine", elem_id="engine")
                with gr.Row():
                    frames = gr.Slider(3, 140, value=35, step=1, label="Frames")
                    motion = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Motion strength")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
                    random_seed = gr.Button("Random seed", size="sm")
                with gr.Row():
                    size = gr.Textbox(value="", label="Size (N or WxH, multiples of 8; empty: the picture's)",
                                      elem_id="size")  # fmt: skip
                    fps = gr.Number(value=8, label="Frames per second")
                    interpolate = gr.Slider(0, 7, value=0, step=1, label="Interpolated frames between each pair")
                with gr.Accordion("Advanced (diffusion)", open=False, visible=bool(models)):
                    loop_closure = gr.Radio(list(LOOP_CLOSURES), value=LOOP_CLOSURES[0], label="Loop closure")
                    steps = gr.Slider(1, 100, value=DIFFUSION_DEFAULTS["steps"], step=1, label="Steps")
                    guidance_text = gr.Number(value=DIFFUSION_DEFAULTS["guidance_text"], label="Text guidance")
                    guidance_image = gr.Number(value=DIFFUSION_DEFAULTS["guidance_image"], label="Image guidance")
                    negative_prompt = gr.Textbox(value="", label="Negative prompt")
                with gr.Row():
                    run = gr.Button("Animate", variant="primary", elem_id="animate")
                    cancel = gr.Button("Cancel", elem_id="cancel")
            with gr.Column():
                video = gr.Video(label="Loop", autoplay=True, loop=True, elem_id="loop-video")
                downloads = gr.File(label="Download (MP4, GIF, WebP)", file_count="multiple", elem_id="downloads")
                scores = gr.Markdown(elem_id="scores")
                sheet = gr.Image(label="Contact sheet", type="filepath")
        form = {
            "picture": picture, "editor": editor, "prompt": prompt, "engine": engine, "frames": frames,
            "motion": motion, "seed": seed, "size": size, "fps": fps, "interpolate": interpolate,
            "loop_closure": loop_closure, "steps": steps, "guidance_text": guidance_text,
            "guidance_image": guidance_image, "negative_prompt": negative_prompt,
        }  # fmt: skip

        def on_animate(*values, progress=gr.Progress()):  # noqa: B008 (gradio's way to ask for a progress bar)
            return animate(dict(zip(form, values, strict=True)), models, progress)

        results = [video, downloads, sheet, scores]
        picture.change(editor_value, picture, editor)
        random_seed.click(lambda: random.randint(0, MAX_SEED), None, seed)
        # One loop at a time (the queue's limit, set in `serve`): a second request waits, a model never runs two.
        job = run.click(on_animate, list(form.values()), results)
        examples = [
            [str(EXAMPLES / name), text] for name, text in EXAMPLE_PROMPTS.items() if (EXAMPLES / name).is_file()
        ]
        gallery = gr.Examples(examples, [picture, prompt], label="Examples: click one to animate it")
        example_job = gallery.load_input_event.then(editor_value, picture, editor).then(
            on_animate, list(form.values()), results
        )
        cancel.click(None, None, None, cancels=[job, example_job])
    return app


def serve(models: list[str], host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the app on `host:port` until interrupted; never shared to the internet."""
    app = build_app(models)
    app.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False, footer_links=[], quiet=True
    )
