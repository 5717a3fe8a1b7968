"""PIA on our pipeline: tiny random weights in PIA's two published layouts, converted, and run against diffusers'
own PIAPipeline (the peer's code is the reference), then with what PIA lacks: cycle, masks, long loops, strength;
and training started from it (`init_from`)."""

import shutil
from dataclasses import replace
from pathlib import Path

import PIL.Image
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    UNetMotionModel,
)
from diffusers.pipelines.deprecated.pia.pipeline_pia import PIAPipeline, prepare_mask_coef_by_statistics

from loopanimate.cli import main
from loopanimate.data.synthetic import drifting_sprites, write_mp4
from loopanimate.errors import InvalidArgumentError
from loopanimate.models.conditioning import (
    AFFINITY_PRESETS,
    PAPER_CONDITIONING,
    PIA_CONDITIONING,
    STRENGTH_PRESET,
    frame_affinity,
    frame_conditioning,
)
from loopanimate.models.convert import convert_unet, max_difference, switch_conditioning
from loopanimate.models.unet import LoopAnimateUNet
from loopanimate.pipelines import LoopAnimatePipeline, load_pipeline
from loopanimate.pipelines.assemble import sd15_scheduler
from loopanimate.pipelines.tiny import tiny_components
from loopanimate.training.config import load_config
from loopanimate.training.trainer import train
from tests.conftest import SIZE, seeded
from tests.test_convert import animatediff_keys, random_sources
from tests.test_training import write_config

PARITY_FRAMES = 16  # PIA's trained length: every loop preset's whole table is used
# Largest pixel difference (frames in [0, 1]) from PIAPipeline, measured: 1.2e-6 to 1.5e-6 for the nine presets with
# DDIM, 6e-7 with Euler, with batched guidance branches; up to 1.2e-5 (preset 6) with them run one after another (the
# default since sequential_guidance): float32 rounding. The image latent's mode instead of PIA's sample moves pixels
# by 0.1, image and mask channels swapped by 0.25.
PARITY_TOLERANCE = 3e-5


@pytest.fixture(scope="module")
def pia_sources():
    """A tiny SD UNet and a PIA condition adapter (9-channel conv_in) with every weight random."""
    return random_sources(conv_in_channels=9)


@pytest.fixture(scope="module")
def pia_files(tmp_path_factory, pia_sources):
    """PIA's repository checkpoint (AnimateDiff names plus conv_in), diffusers' adapter folder, and an SD folder."""
    unet, adapter = pia_sources
    folder = tmp_path_factory.mktemp("pia")
    state = animatediff_keys(adapter)
    assert state["conv_in.weight"].shape[1] == 9
    torch.save(state, folder / "pia.ckpt")
    adapter.save_pretrained(folder / "PIA-condition-adapter")
    components = tiny_components()
    sd = folder / "sd"
    unet.save_pretrained(sd / "unet")
    components["vae"].save_pretrained(sd / "vae")
    components["text_encoder"].save_pretrained(sd / "text_encoder")
    components["tokenizer"].save_pretrained(sd / "tokenizer")
    return folder


@pytest.fixture(scope="module")
def converted(pia_files) -> LoopAnimateUNet:
    return convert_unet(pia_files / "sd", pia_files / "pia.ckpt", heads=8)[0]


def adapter_copy(adapter: MotionAdapter) -> MotionAdapter:
    """from_unet2d takes over the adapter's conv_in: every source gets its own copy."""
    copy = MotionAdapter.from_config(adapter.config)
    copy.load_state_dict(adapter.state_dict())
    return copy.eval()


def pia_source(pia_sources) -> UNetMotionModel:
    unet, adapter = pia_sources
    return UNetMotionModel.from_unet2d(unet, adapter_copy(adapter)).eval()


@pytest.fixture(scope="module")
def pipes(pia_files, pia_sources, converted):
    """diffusers' PIAPipeline and ours on the same weights and components (ours converted from pia.ckpt)."""
    components = tiny_components()
    vae = AutoencoderKL.from_pretrained(pia_files / "sd" / "vae").eval()
    shared = {"vae": vae, "text_encoder": components["text_encoder"], "tokenizer": components["tokenizer"]}
    unet2d, adapter = pia_sources
    peer = PIAPipeline(unet=unet2d, motion_adapter=adapter_copy(adapter), scheduler=sd15_scheduler(), **shared)
    ours = LoopAnimatePipeline(
        unet=converted, image_encoder=None, feature_extractor=None, scheduler=sd15_scheduler(), **shared
    )
    for pipe in (peer, ours):
        pipe.set_progress_bar_config(disable=True)
    return peer, ours


@pytest.fixture(scope="module")
def square_image() -> PIL.Image.Image:
    """A picture already at the output size: PIAPipeline does not resize."""
    y, x = torch.meshgrid(torch.linspace(0, 1, SIZE), torch.linspace(0, 1, SIZE), indexing="ij")
    rgb = torch.stack([x, y, 1 - x], dim=-1)
    rgb[20:44, 16:48] = torch.tensor([0.9, 0.2, 0.1])
    return PIL.Image.fromarray((rgb * 255).to(torch.uint8).numpy())


def ours(pipe, image, **kwargs):
    settings = {"num_frames": 5, "num_inference_steps": 2, "height": SIZE, "width": SIZE, "output_type": "np"}
    settings.update(kwargs)
    return pipe(image, "a red box sways", generator=seeded(3), **settings).frames


@pytest.mark.parametrize("layout", ["pia.ckpt", "PIA-condition-adapter"])
def test_both_pia_layouts_convert_to_exactly_the_source(pia_files, pia_sources, layout):
    model, report = convert_unet(pia_files / "sd", pia_files / layout, heads=8)
    source = pia_source(pia_sources)
    assert max_difference(source, model) < 1e-5  # every one of the 9 inputs random, in PIA's own order
    assert report["conv_in_channels"] == [9, 9] and report["missing"] == [] and report["unexpected"] == []
    torch.testing.assert_close(model.conv_in.weight, source.conv_in.weight, rtol=0, atol=0)
    assert model.conditioning == PIA_CONDITIONING and model.config.context_routing == "text"


def test_convert_command_takes_pia_without_an_image_encoder(pia_files, tmp_path, capsys):
    code = main(["convert", "--unet", str(pia_files / "sd"), "--motion-module", str(pia_files / "pia.ckpt"),
                 "--motion-heads", "8", "-o", str(tmp_path / "model")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "conv_in 9 -> 9 channels" in capsys.readouterr().out
    loaded = load_pipeline(tmp_path / "model")
    assert loaded.image_encoder is None and loaded.unet.conditioning == PIA_CONDITIONING and loaded.max_frames == 16


@pytest.mark.parametrize("motion_scale", range(len(AFFINITY_PRESETS)))
def test_affinity_presets_are_pias(motion_scale):
    for frames in (5, 16, 24):
        expected = prepare_mask_coef_by_statistics(frames, 0, motion_scale)
        assert frame_affinity(frames, motion_scale=motion_scale) == expected


@pytest.mark.parametrize(
    ("motion_scale", "scheduler"),
    [*((scale, DDIMScheduler) for scale in range(len(AFFINITY_PRESETS))), (4, EulerDiscreteScheduler)],
)
def test_same_frames_as_diffusers_pia_pipeline(pipes, square_image, motion_scale, scheduler):
    peer, pipe = pipes
    for each in pipes:
        each.scheduler = scheduler.from_config(sd15_scheduler().config)
    settings = {"num_frames": PARITY_FRAMES, "num_inference_steps": 2, "height": SIZE, "width": SIZE}
    expected = peer(
        image=square_image,
        prompt="a red box sways",
        guidance_scale=7.5,
        motion_scale=motion_scale,
        generator=seeded(3),
        output_type="np",
        **settings,
    ).frames
    actual = pipe(
        square_image,
        "a red box sways",
        guidance_scale_text=7.5,
        loop_closure="none",
        motion_scale=motion_scale,
        generator=seeded(3),
        output_type="np",
        **settings,
    ).frames
    assert expected.shape == actual.shape == (1, PARITY_FRAMES, SIZE, SIZE, 3)
    torch.testing.assert_close(torch.from_numpy(actual), torch.from_numpy(expected), rtol=0, atol=PARITY_TOLERANCE)


def test_pia_conditioning_puts_mask_before_image_on_every_frame():
    latents = torch.randn(1, 4, 2, 2)
    condition = frame_conditioning(latents, 6, conditioning=PIA_CONDITIONING, motion_scale=0)
    assert condition[0, 0, :, 0, 0].tolist() == pytest.approx(prepare_mask_coef_by_statistics(6, 0, 0))
    assert torch.equal(condition[:, 1:], latents[:, :, None].expand(1, 4, 6, 2, 2))


def test_on_a_circle_the_affinity_returns_to_the_picture_both_ways():
    circle = frame_affinity(30, circular=True, motion_scale=0)
    assert circle == circle[:1] + circle[1:][::-1]  # frame i and frame -i are as far from the picture
    assert circle[1] == circle[-1] == 0.9 and min(circle) == 0.8
    # A loop preset is read as its way out: one dip and one return on a circle of any length.
    loop = frame_affinity(34, circular=True, motion_scale=5)
    assert loop[17] == 0.5 and loop[1] == loop[-1] == 0.8 and loop == loop[:1] + loop[1:][::-1]


def test_continuous_strength_maps_onto_the_affinity():
    assert frame_affinity(16, motion_strength=1.0) == frame_affinity(16, motion_scale=STRENGTH_PRESET)
    assert frame_affinity(16, motion_strength=0.0) == [1.0] * 16
    half = frame_affinity(16, motion_strength=0.5)
    assert all(a >= h >= b for a, h, b in zip([1.0] * 16, half, frame_affinity(16), strict=True))


def spy_conv_inputs(pipe, monkeypatch) -> list[torch.Tensor]:
    calls = []
    original = LoopAnimateUNet.forward

    def spy(self, sample, *args, **kwargs):
        calls.append(sample.clone())
        return original(self, sample, *args, **kwargs)

    monkeypatch.setattr(LoopAnimateUNet, "forward", spy)
    return calls


def test_strength_reaches_pia_through_the_mask_channel_not_the_noise(pipes, square_image, monkeypatch):
    _, pipe = pipes
    calls = spy_conv_inputs(pipe, monkeypatch)
    ours(pipe, square_image, num_inference_steps=1, motion_strength=0.5, loop_closure="none")
    mask = calls[0][0, 4, :, 0, 0]  # PIA's channel order: noisy 0-3, mask 4, image 5-8
    torch.testing.assert_close(mask, torch.tensor(frame_affinity(5, motion_strength=0.5)), rtol=0, atol=1e-6)
    noise = pipe.initial_noise((1, 4, 5, 2, 2), 0.5, seeded(0))
    torch.testing.assert_close(noise, pipe.initial_noise((1, 4, 5, 2, 2), 1.0, seeded(0)), rtol=0, atol=0)


def test_a_35_frame_cycle_runs_on_the_16_frame_model_in_windows(pipes, square_image, monkeypatch):
    _, pipe = pipes
    calls = spy_conv_inputs(pipe, monkeypatch)
    frames = ours(pipe, square_image, num_frames=35, num_inference_steps=2, loop_closure="cycle", motion_scale=3)
    assert frames.shape[1] == 35 and (frames[0, -1] == frames[0, 0]).all()
    assert max(call.shape[2] for call in calls) <= 16 and len(calls) > 2
    # The affinity rolls with the circle: the frame carrying 1.0 (the picture's own) moves between steps.
    anchors = [torch.cat([c[0, 4, :, 0, 0] for c in calls[i : i + 3]]).argmax().item() for i in (0, len(calls) - 3)]
    assert anchors[0] != anchors[1]


def test_a_mask_keeps_pias_background_the_picture(pipes, square_image):
    _, pipe = pipes
    mask = PIL.Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, (16, 16, 48, 48))
    frames = ours(pipe, square_image, num_frames=6, mask=mask, loop_closure="cycle")
    picture = torch.from_numpy(pipe.video_processor.pil_to_numpy(square_image))[0]  # (H, W, 3) in [0, 1]
    outside = torch.from_numpy(frames[0, :, :8])  # the top rows: far outside the mask
    torch.testing.assert_close(outside, picture[:8].expand_as(outside), rtol=0, atol=1.5 / 255)


def test_pia_refuses_more_frames_than_it_learned_unless_cycled(pipes, square_image):
    _, pipe = pipes
    with pytest.raises(InvalidArgumentError, match=r"give 2 to 16 .* or loop closure cycle"):
        ours(pipe, square_image, num_frames=17, loop_closure="none")


# Largest output difference between PIA and its switch on permuted inputs, measured 9.5e-7 (float rounding: conv_in
# sums its channels in another order); with the channels relabelled instead of permuted, 1.16.
SWITCH_TOLERANCE = 1e-5


def test_init_from_switches_pia_to_the_papers_condition_and_computes_what_pia_computes(converted):
    # PIA's own 32 motion positions, as its checkpoint has them: the switch extends them to 36.
    pia = LoopAnimateUNet.from_config({**converted.config, "motion_max_seq_length": 32}).eval()
    state = {key: value for key, value in converted.state_dict().items() if not key.endswith(".pe")}
    assert not pia.load_state_dict(state, strict=False).unexpected_keys
    paper = replace(PAPER_CONDITIONING, trained_frames=15)
    switched = switch_conditioning(pia, paper).eval()
    assert switched.conditioning == paper and switched.config.context_routing == "text"
    assert switched.config.motion_max_seq_length == 36
    generator = seeded(1)
    inputs = torch.randn(1, 9, 16, 8, 8, generator=generator)  # PIA's order: noisy 0-3, mask 4, image 5-8
    text = torch.randn(1, 7, 32, generator=generator)
    permuted = inputs[:, [0, 1, 2, 3, 5, 6, 7, 8, 4]]  # ours: noisy, image, mask
    with torch.no_grad():
        expected = pia(inputs, 500, text[:, :0], text).sample
        actual = switched(permuted, 500, text[:, :0], text).sample
        assert switched(permuted.repeat(1, 1, 3, 1, 1)[:, :, :36], 500, text[:, :0], text).sample.shape[2] == 36
    torch.testing.assert_close(actual, expected, rtol=0, atol=SWITCH_TOLERANCE)


@pytest.fixture(scope="module")
def pia_model_dir(pia_files, tmp_path_factory) -> str:
    """A converted PIA pipeline folder, as `loopanimate convert` writes it."""
    folder = tmp_path_factory.mktemp("pia-model") / "model"
    assert main(["convert", "--unet", str(pia_files / "sd"), "--motion-module", str(pia_files / "pia.ckpt"),
                 "--motion-heads", "8", "-o", str(folder)]) == 0  # fmt: skip
    return str(folder)


@pytest.fixture(scope="module")
def sprite_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sprites")
    for number in range(2):
        write_mp4(folder / f"v{number}.mp4", drifting_sprites(20, (32, 32), seed=number))
        (folder / f"v{number}.txt").write_text("squares drift")
    return folder


def test_training_steps_from_pia_save_a_paper_layout_model_with_pias_other_weights(tmp_path, pia_model_dir,
                                                                                  sprite_videos):  # fmt: skip
    config = load_config(
        write_config(
            tmp_path / "c.yaml", "", sprite_videos, init_from=pia_model_dir, max_steps=2, trainable=["^conv_in\\."]
        )
    )
    final = train(config)
    before, after = load_pipeline(pia_model_dir).unet, load_pipeline(final).unet
    assert (
        after.conditioning == replace(PAPER_CONDITIONING, trained_frames=7) and after.config.context_routing == "text"
    )
    unchanged = {name for name, weight in after.state_dict().items() if torch.equal(weight, before.state_dict()[name])}
    assert set(after.state_dict()) - unchanged == {"conv_in.weight", "conv_in.bias"}  # the only trained weights
    # Trained from PIA's weights in our order: closer to them than to PIA's unpermuted layout.
    permuted = before.conv_in.weight[:, [0, 1, 2, 3, 5, 6, 7, 8, 4]]
    assert (after.conv_in.weight - permuted).abs().max() < (after.conv_in.weight - before.conv_in.weight).abs().max()
    # The next stage continues it with model: and records its own clip length.
    (tmp_path / "next").mkdir()
    config = load_config(write_config(tmp_path / "next" / "c.yaml", str(final), sprite_videos, num_frames=9,
                                      max_steps=1, trainable=["^conv_in\\."]))  # fmt: skip
    assert load_pipeline(train(config)).unet.conditioning.trained_frames == 9


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"init_from": "PIA", "model": "other"}, "model: and init_from: are both set: give one"),
        ({"init_from": "PIA", "context_routing": "sideways"}, "context_routing: 'sideways' is unknown: use one of"),
        ({"model": "PIA", "context_routing": "mitdf"}, "context_routing: is set without init_from"),
        ({"init_from": 5}, "init_from: 5 should be of type str"),
        ({"model": "PIA"}, "reads its picture as PIA does (image on all frames, mask affinity)"),
        ({"init_from": "PIA", "context_routing": "mitdf"}, "context_routing: mitdf reads CLIP image tokens, but"),
    ],
)
def test_init_from_mistakes_are_one_line_before_the_run_folder(tmp_path, pia_model_dir, sprite_videos, capsys,
                                                               settings, message):  # fmt: skip
    settings = {key: pia_model_dir if value == "PIA" else value for key, value in settings.items()}
    config = write_config(tmp_path / "c.yaml", settings.pop("model", ""), sprite_videos, **settings)
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_the_stage1_from_pia_config_is_stage1_started_from_pia(tmp_path, monkeypatch):
    shutil.copytree(Path(__file__).resolve().parent.parent / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)  # the configs' paths are relative to their folder: ../data, ../models
    (tmp_path / "data" / "webvid").mkdir(parents=True)
    (tmp_path / "data" / "webvid" / "results_2M_train.csv").write_text("videoid,name,page_dir\n")
    from_pia, stage1 = (load_config(Path("configs") / name) for name in ("stage1-from-pia.yaml", "stage1.yaml"))
    assert from_pia.init_from == "models/pia" and not from_pia.model and not from_pia.context_routing
    assert {**vars(from_pia), "init_from": "", "model": stage1.model} == vars(stage1)  # only the start differs
