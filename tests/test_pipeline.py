"""LoopAnimatePipeline: shapes, frame-0 conditioning, guidance, seeds, save/load, argument checks."""

import numpy as np
import PIL.Image
import pytest
import torch

from loopanimate.errors import InvalidArgumentError
from loopanimate.models import LoopAnimateUNet
from loopanimate.pipelines import LoopAnimatePipeline, combine_guidance, load_pipeline
from tests.conftest import SIZE, seeded


def run(pipe, image, **kwargs):
    settings = {"num_frames": 6, "num_inference_steps": 2, "height": SIZE, "width": SIZE, "output_type": "np"}
    settings.update(kwargs)
    return pipe(image, "a red box sways", generator=settings.pop("generator", seeded()), **settings).frames


def spy_unet_calls(pipe, monkeypatch) -> list[dict]:
    calls = []
    original = LoopAnimateUNet.forward

    def spy(self, sample, timestep, image_context, text_context, **kwargs):
        calls.append(
            {"sample": sample.clone(), "image_context": image_context.clone(), "text_context": text_context.clone()}
        )
        return original(self, sample, timestep, image_context, text_context, **kwargs)

    monkeypatch.setattr(LoopAnimateUNet, "forward", spy)
    return calls


def test_generates_35_frames(pipe, image):
    frames = run(pipe, image, num_frames=35)
    assert frames.shape == (1, 35, SIZE, SIZE, 3)
    assert frames.min() >= 0.0 and frames.max() <= 1.0


@pytest.mark.parametrize(("output_type", "shape"), [("np", (1, 4, SIZE, SIZE, 3)), ("pt", (1, 4, 3, SIZE, SIZE))])
def test_array_output_types(pipe, image, output_type, shape):
    assert tuple(run(pipe, image, num_frames=4, output_type=output_type).shape) == shape


def test_pil_output_is_one_list_of_frames_per_video(pipe, image):
    frames = run(pipe, image, num_frames=4, output_type="pil")
    assert len(frames) == 1 and len(frames[0]) == 4 and frames[0][0].size == (SIZE, SIZE)


def test_frame_zero_carries_the_image_latent_and_mask(pipe, image, monkeypatch):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(pipe, image, num_frames=5, num_inference_steps=1, guidance_scale_text=1.0)
    pixels = pipe.video_processor.preprocess([image], height=SIZE, width=SIZE, resize_mode="crop")
    expected = pipe.encode_image_latents(pixels)
    sample = calls[0]["sample"]  # (B, 9, F, h, w)
    assert sample.shape[1] == 9
    torch.testing.assert_close(sample[:, 4:8, 0], expected)
    assert torch.equal(sample[:, 8, 0], torch.ones_like(sample[:, 8, 0]))
    assert not sample[:, 4:, 1:].any()  # no image and no mask on the other frames


@pytest.mark.parametrize(
    ("scale_image", "scale_text", "branches"), [(1.0, 1.0, 1), (1.0, 7.5, 2), (2.0, 1.0, 3), (2.0, 7.5, 3)]
)
def test_only_needed_guidance_branches_run(pipe, image, monkeypatch, scale_image, scale_text, branches):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(
        pipe,
        image,
        num_frames=3,
        num_inference_steps=1,
        guidance_scale_image=scale_image,
        guidance_scale_text=scale_text,
        share_down_path=False,  # every branch through `forward`, batched
        sequential_guidance=False,
    )
    assert calls[0]["sample"].shape[0] == branches


def test_unconditional_branch_has_no_image_tokens_and_image_branch_no_text(pipe, image, monkeypatch):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(pipe, image, num_frames=3, num_inference_steps=1, guidance_scale_image=2.0, guidance_scale_text=5.0,
        share_down_path=False, sequential_guidance=False)  # fmt: skip
    full, image_only, uncond = calls[0]["image_context"].chunk(3)
    assert torch.equal(full, image_only) and full.abs().sum() > 0
    assert not uncond.any()
    text_full, text_image_only, text_uncond = calls[0]["text_context"].chunk(3)
    assert torch.equal(text_image_only, pipe.encode_text([""]))
    assert not torch.equal(text_full, text_image_only)
    assert torch.equal(text_image_only, text_uncond)


def test_negative_prompt_replaces_the_empty_text(pipe, image, monkeypatch):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(pipe, image, num_frames=3, num_inference_steps=1, negative_prompt="blurry", share_down_path=False,
        sequential_guidance=False)  # fmt: skip
    assert torch.equal(calls[0]["text_context"].chunk(2)[1], pipe.encode_text(["blurry"]))


@pytest.mark.parametrize("scale_image", [1.0, 2.0])
def test_sharing_the_down_path_changes_nothing_but_rounding(pipe, image, scale_image):
    settings = {"guidance_scale_text": 7.5, "guidance_scale_image": scale_image, "negative_prompt": "blurry"}
    shared, whole = (run(pipe, image, share_down_path=share, **settings) for share in (True, False))
    # Other batch shapes take other kernels (CI's CPU: 1e-5 apart); a wrong branch moves frames by more than 1e-2.
    np.testing.assert_allclose(shared, whole, rtol=0, atol=1e-4)


def test_with_text_guidance_only_the_unconditional_branch_runs_the_whole_unet(pipe, image, monkeypatch):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(pipe, image, num_frames=3, num_inference_steps=1, guidance_scale_image=2.0, guidance_scale_text=5.0)
    assert len(calls) == 1 and not calls[0]["image_context"].any()  # (I, T) and (I, -) shared the down path


def test_combine_guidance_matches_the_two_scale_formula():
    full, image_only, uncond = torch.randn(3, 2, 4)
    expected = uncond + 2.0 * (image_only - uncond) + 7.5 * (full - image_only)
    torch.testing.assert_close(combine_guidance(full, image_only, uncond, 2.0, 7.5), expected)
    torch.testing.assert_close(
        combine_guidance(full, image_only, None, 1.0, 7.5), image_only + 7.5 * (full - image_only)
    )
    assert combine_guidance(full, None, None, 1.0, 1.0) is full


def test_same_seed_same_frames_other_seed_other_frames(pipe, image):
    first, again, other = run(pipe, image), run(pipe, image), run(pipe, image, generator=seeded(1))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_batched_equals_one_at_a_time(pipe, image):
    second = image.transpose(0)  # a mirrored picture
    latents = torch.randn(2, 4, 4, SIZE // 8, SIZE // 8, generator=seeded())
    batched = run(pipe, [image, second], num_frames=5, latents=latents)  # a cycle of 5: 4 latent frames
    alone = [run(pipe, im, num_frames=5, latents=latents[i : i + 1]) for i, im in enumerate([image, second])]
    # A batch of two takes other kernels than one (CI's CPU: 1.07e-5 apart); a swapped picture moves frames by > 1e-2.
    np.testing.assert_allclose(batched, np.concatenate(alone), rtol=0, atol=1e-4)


def test_save_load_gives_the_same_frames(pipe, image, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = load_pipeline(tmp_path)
    assert isinstance(loaded, LoopAnimatePipeline) and isinstance(loaded.unet, LoopAnimateUNet)
    # Another instance, other kernels: frames in [0, 1] agree to 1e-4 (a missing or wrong tensor moves them by > 1e-2).
    np.testing.assert_allclose(run(loaded, image), run(pipe, image), rtol=0, atol=1e-4)


@pytest.mark.parametrize("frames", [1, 37])
def test_frame_count_out_of_range_is_refused(pipe, image, frames):
    with pytest.raises(InvalidArgumentError, match="give 2 to 36"):
        run(pipe, image, num_frames=frames, loop_closure="none")


def test_size_not_divisible_by_8_is_refused(pipe, image):
    with pytest.raises(InvalidArgumentError, match="not divisible by 8"):
        run(pipe, image, height=60)


def test_progress_callback_counts_every_step(pipe, image):
    steps = []
    run(pipe, image, num_frames=3, num_inference_steps=3, callback=lambda step, total: steps.append((step, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_cycle_closes_the_loop_exactly(pipe, image):
    frames = run(pipe, image, num_frames=7, loop_closure="cycle")
    assert frames.shape[1] == 7
    assert np.array_equal(frames[0, 0], frames[0, -1])


def test_cycle_rolls_the_circle_differently_at_each_step(pipe, image, monkeypatch):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(pipe, image, num_frames=9, num_inference_steps=4, loop_closure="cycle", guidance_scale_text=1.0)
    mask_positions = [int(call["sample"][0, 8, :, 0, 0].argmax()) for call in calls]  # where frame 0 sits
    assert len(calls[0]["sample"][0, 0]) == 8  # 9 frames: 8 unique, the last repeats frame 0
    assert len(set(mask_positions)) > 1


@pytest.mark.parametrize(("loop_windows", "calls_per_step", "longest"), [("tiled", 2, 35), ("overlap", 4, 36)])
def test_a_long_cycle_runs_in_windows_of_the_models_length(
    pipe, image, monkeypatch, loop_windows, calls_per_step, longest
):
    calls = spy_unet_calls(pipe, monkeypatch)
    frames = run(
        pipe, image, num_frames=71, num_inference_steps=1, guidance_scale_text=1.0, loop_windows=loop_windows
    )  # 70 frames on the circle
    assert frames.shape[1] == 71 and np.array_equal(frames[0, 0], frames[0, -1])
    assert len(calls) == calls_per_step and max(call["sample"].shape[2] for call in calls) == longest


def test_condition_marks_the_first_and_the_last_frame(pipe, image, monkeypatch):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(pipe, image, num_frames=6, num_inference_steps=1, loop_closure="condition", guidance_scale_text=1.0)
    assert calls[0]["sample"][0, 8, :, 0, 0].tolist() == [1, 0, 0, 0, 0, 1]
    torch.testing.assert_close(calls[0]["sample"][:, 4:8, 0], calls[0]["sample"][:, 4:8, -1])


def test_motion_strength_zero_starts_every_frame_from_the_same_noise(pipe, image, monkeypatch):
    calls = spy_unet_calls(pipe, monkeypatch)
    run(pipe, image, num_frames=5, num_inference_steps=1, motion_strength=0.0, guidance_scale_text=1.0)
    noise = calls[0]["sample"][0, :4]  # (4, F, h, w)
    assert noise.shape[1] >= 4 and all(torch.equal(noise[:, 0], noise[:, f]) for f in range(1, noise.shape[1]))


def test_long_clips_need_the_cycle(pipe, image):
    with pytest.raises(InvalidArgumentError, match="or loop closure cycle for any length"):
        run(pipe, image, num_frames=70, loop_closure="none")


@pytest.mark.parametrize(("argument", "value"), [("loop_closure", "spiral"), ("motion_strength", 1.5)])
def test_unknown_loop_settings_are_refused(pipe, image, argument, value):
    with pytest.raises(InvalidArgumentError):
        run(pipe, image, **{argument: value})


def half_mask(image, moving: str = "left") -> PIL.Image.Image:
    """White on one half of the picture (what may move), black on the other."""
    mask = np.zeros((image.height, image.width), np.uint8)
    mask[:, : image.width // 2] = 255
    return PIL.Image.fromarray(mask if moving == "left" else 255 - mask)


@pytest.mark.parametrize(("loop_closure", "num_frames"), [("cycle", 6), ("none", 6), ("condition", 6), ("cycle", 71)])
def test_outside_the_mask_every_frame_is_the_picture(pipe, image, loop_closure, num_frames):
    frames = run(pipe, image, mask=half_mask(image), loop_closure=loop_closure, num_frames=num_frames)[
        0
    ]  # (F, H, W, 3)
    outside = (
        pipe.preprocess_masks(half_mask(image), [image], SIZE, SIZE)[0, 0].numpy() == 0
    )  # cropped like the picture
    picture = pipe.video_processor.postprocess_video(
        pipe.video_processor.preprocess([image], height=SIZE, width=SIZE, resize_mode="crop")[:, :, None],
        output_type="np",
    )[0, 0]  # (H, W, 3) in [0, 1]
    assert 0.3 < outside.mean() < 0.7
    np.testing.assert_allclose(
        frames[:, outside], np.broadcast_to(picture[outside], frames[:, outside].shape), atol=1e-6
    )
    inside = ~np.roll(outside, -6, axis=1) & ~outside  # well inside the white half
    assert np.abs(frames[1:, inside] - frames[:1, inside]).max() > 0.01  # there, it moves


def test_an_all_white_mask_changes_nothing(pipe, image):
    white = PIL.Image.new("L", image.size, 255)
    assert np.array_equal(run(pipe, image, mask=white), run(pipe, image))


def test_an_all_black_mask_gives_a_still_loop_of_the_picture(pipe, image):
    frames = run(pipe, image, mask=PIL.Image.new("L", image.size, 0))[0]
    np.testing.assert_allclose(frames, np.broadcast_to(frames[0], frames.shape), rtol=0, atol=1e-6)
    np.testing.assert_allclose(frames[0], run(pipe, image, mask=PIL.Image.new("L", image.size, 0))[0, 0], atol=1e-6)


def test_a_mask_of_another_size_is_stretched_to_the_picture(pipe, image):
    small = half_mask(image).resize((image.width // 4, image.height // 4), PIL.Image.NEAREST)
    frames = run(pipe, image, mask=small, num_frames=4)[0]
    still = frames[:, :, SIZE // 2 + 6 :]  # away from the edge, which the 4x stretch blurs over a few pixels
    np.testing.assert_allclose(still, np.broadcast_to(still[0], still.shape), rtol=0, atol=1e-6)


class Stop(Exception):
    """Raised by a stand-in to end a pipeline call once it has seen what the test asks about."""


@pytest.mark.parametrize(
    ("capability", "dtype", "fused"),
    [("AVX2", torch.bfloat16, False), ("AVX512", torch.bfloat16, True), ("AVX2", torch.float32, True)],
)
def test_bfloat16_on_a_cpu_without_avx512_uses_the_plain_attention_kernel(
    pipe, image, monkeypatch, capability, dtype, fused
):
    # torch's fused bfloat16 kernel fails there on CLIP's 77 tokens ("pack_vnni2 is only supported when avx512 ...")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(type(pipe), "dtype", property(lambda self: dtype))
    seen = []

    def encode_text(prompts):
        seen.append(torch.backends.cuda.flash_sdp_enabled())  # the fused kernels' switch, off under the math kernel
        raise Stop

    monkeypatch.setattr(pipe, "encode_text", encode_text)
    with pytest.raises(Stop):
        run(pipe, image)
    assert seen == [fused]
