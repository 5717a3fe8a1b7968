"""`make_loop`: the one library function behind every face (engine choice, checks, reuse of a loaded model)."""

import dataclasses
import re

import numpy as np
import PIL.Image
import pytest

from loopanimate.animate import LoopRequest, loaded_pipeline, make_loop, make_loops, output_size
from loopanimate.errors import InvalidArgumentError


def test_auto_picks_diffusion_only_with_a_model(tiny_model_dir, image):
    assert LoopRequest(image).check() == "motion"
    assert LoopRequest(image, model=tiny_model_dir).check() == "diffusion"


def test_a_motion_loop_starts_on_the_picture_and_closes(image):
    loop = make_loop(LoopRequest(image, "the box bobs", num_frames=5))
    assert loop.engine == "motion" and loop.frames.shape == (5, 96, 128, 3)
    assert np.array_equal(loop.frames[0], np.asarray(image)) and np.array_equal(loop.frames[-1], loop.frames[0])
    assert loop.notes[0].startswith("engine: motion")


def test_the_summary_line_says_what_the_motion_brush_does(image):
    loop = make_loop(LoopRequest(image, "the box sways", num_frames=5, arrows="10,50>40,50", anchors="60,90;70,90"))
    assert loop.notes[0].endswith("; 1 arrow steers it to the right; 2 pins hold still")


def test_interpolation_multiplies_frames_and_rate(image):
    loop = make_loop(LoopRequest(image, "the box bobs", num_frames=5, interpolate=1, fps=10))
    assert len(loop.frames) == 9 and loop.fps == 20  # 4 shown frames, one more after each, then the closing frame


def test_a_diffusion_loop_reports_every_step(tiny_model_dir, image):
    steps = []
    request = LoopRequest(image, "a box", model=tiny_model_dir, num_frames=4, size=(64, 64), steps=2)
    loop = make_loop(request, progress=lambda step, total: steps.append((step, total)))
    # The 128x96 picture fits inside the 64x64 box keeping its shape: 64x48.
    assert loop.engine == "diffusion" and loop.frames.shape == (4, 48, 64, 3) and loop.frames.dtype == np.uint8
    assert steps == [(1, 2), (2, 2)]


def test_a_model_is_loaded_once_and_reused(tiny_model_dir):
    assert loaded_pipeline(tiny_model_dir, "cpu") is loaded_pipeline(tiny_model_dir, "cpu")


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"guidance_text": 3.0}, "--guidance-text is used by the diffusion engine only"),
        ({"engine": "spiral"}, "engine 'spiral' is unknown"),
        ({"num_frames": 2.5}, "frames 2.5 is out of range"),
    ],
)
def test_requests_are_checked_before_any_work(image, settings, words):
    with pytest.raises(InvalidArgumentError, match=words):
        make_loop(LoopRequest(image, **settings))


def test_batched_diffusion_loops_equal_the_loops_made_alone(tiny_model_dir, image):
    second = image.transpose(0)  # a mirrored picture
    requests = [
        LoopRequest(picture, prompt, model=tiny_model_dir, num_frames=4, size=(64, 64), steps=2, seed=seed)
        for picture, prompt, seed in [(image, "a box", 3), (second, "a mirrored box", 8)]
    ]
    batched = make_loops(requests)
    for request, loop in zip(requests, batched, strict=True):
        alone = make_loop(request).frames.astype(int)
        assert np.abs(loop.frames.astype(int) - alone).max() <= 1  # batch size changes float rounding, nothing more


def test_only_requests_that_differ_in_picture_prompt_and_seed_share_a_run(tiny_model_dir, image):
    base = LoopRequest(image, model=tiny_model_dir, num_frames=4, size=(64, 64), steps=2)
    with pytest.raises(InvalidArgumentError, match="differ in more than picture, prompt and seed"):
        make_loops([base, LoopRequest(image, model=tiny_model_dir, num_frames=5, size=(64, 64), steps=2)])


def test_a_mask_painted_on_the_picture_is_fitted_with_it(tmp_path):
    """A 2400x1200 photo becomes 1024x512; its 2400x1200 mask (left half white) follows, with no note about
    resizing."""
    photo = PIL.Image.new("RGB", (2400, 1200), (30, 90, 160))
    photo.paste((230, 60, 40), (400, 300, 1000, 900))
    photo.paste((40, 220, 60), (1400, 300, 2000, 900))
    mask = PIL.Image.new("L", (2400, 1200), 0)
    mask.paste(255, (0, 0, 1200, 1200))
    loop = make_loop(LoopRequest(photo, "the box bobs", num_frames=5, mask=mask))
    assert loop.frames.shape[1:3] == (512, 1024) and not any("resized" in note for note in loop.notes)
    moved = np.abs(loop.frames[2].astype(int) - loop.frames[0].astype(int)).sum(axis=2)
    assert moved[:, :512].sum() > 0 and moved[:, 600:].sum() == 0  # only the masked half moves


def test_bfloat16_makes_the_same_loop_within_its_precision(tiny_model_dir, image):
    request = LoopRequest(image, "a box", model=tiny_model_dir, num_frames=4, size=(64, 64), steps=2)
    full = make_loop(request).frames.astype(int)
    half = make_loop(LoopRequest(**{**request.__dict__, "dtype": "bfloat16"})).frames.astype(int)
    assert half.shape == full.shape and np.abs(half - full).mean() < 8  # bf16 keeps 8 bits of mantissa


def test_compile_wraps_every_block_in_place():
    from loopanimate.pipelines.tiny import tiny_unet

    unet = tiny_unet()
    unet.compile_blocks()
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    assert all(block._compiled_call_impl is not None for block in blocks)  # nn.Module.compile's in-place wrapper


@pytest.mark.parametrize(
    ("size", "crop", "picture", "expected"),
    [
        ((512, 512), False, (1200, 800), (336, 512)),  # a landscape photo inside a square box keeps its shape
        ((512, 512), True, (1200, 800), (512, 512)),  # --crop fills the box
        ("phone", False, (800, 1200), (1616, 1080)),  # a portrait photo inside the portrait phone box
        ("phone", False, (1200, 800), (1080, 1616)),  # the preset turns to a landscape photo
        ("4k", True, (1600, 900), (2160, 3840)),
        (None, False, (2400, 1600), (683, 1024)),  # no box: the long side at most 1024, the exact shape
        (None, False, (600, 400), (400, 600)),  # a smaller photo keeps its own size
    ],
)
def test_the_loop_size_fits_the_box_keeping_the_picture_shape(size, crop, picture, expected):
    assert output_size(size, crop, picture) == expected


def test_the_motion_engine_says_the_size_it_used(image):
    loop = make_loop(LoopRequest(image, "the box bobs", num_frames=3, size=(64, 64)))
    assert loop.frames.shape[1:3] == (48, 64)
    assert any("size: 64x48, the picture inside 64x64 keeping its shape" in note for note in loop.notes)


def test_offload_on_the_cpu_is_refused_before_loading(tiny_model_dir, image):
    request = LoopRequest(image, "a box", model=tiny_model_dir, num_frames=4, size=(64, 64), device="cpu", offload=True)
    with pytest.raises(InvalidArgumentError, match="--offload moves models between the CPU and a GPU"):
        request.check()


def test_offload_is_a_diffusion_setting(image):
    with pytest.raises(InvalidArgumentError, match="--offload is used by the diffusion engine only"):
        LoopRequest(image, "a box", offload=False).check()


def test_a_model_folder_declares_its_own_sampling_and_flags_still_override(tmp_path, tiny_model_dir, image):
    import shutil

    model = tmp_path / "few-step"
    shutil.copytree(tiny_model_dir, model)
    (model / "sampling.json").write_text('{"steps": 3, "guidance_text": 1.0}')
    image.save(tmp_path / "in.png")
    steps = []
    request = LoopRequest(image=str(tmp_path / "in.png"), model=str(model), size=(64, 64), num_frames=4)
    loop = make_loop(request, progress=lambda step, total: steps.append(total))
    assert steps == [3, 3, 3] and "steps 3, guidance text 1.0 (the model folder's sampling.json)" in loop.notes[0]
    steps.clear()
    make_loop(dataclasses.replace(request, steps=2), progress=lambda step, total: steps.append(total))
    assert steps == [2, 2]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"steps": "four"}', "steps is 'four'; give a whole number"),
        ('{"stpes": 4}', "unknown setting 'stpes'"),
        ("[4]", "must be an object"),
    ],
)
def test_a_broken_sampling_file_is_one_line(tmp_path, tiny_model_dir, image, text, words):
    import shutil

    model = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, model)
    (model / "sampling.json").write_text(text)
    image.save(tmp_path / "in.png")
    with pytest.raises(InvalidArgumentError, match=re.escape(words)):
        LoopRequest(image=str(tmp_path / "in.png"), model=str(model), size=(64, 64)).check()
