"""Few-step motion modules on our pipeline: tiny random weights in AnimateDiff-Lightning's layout (a MotionAdapter
state dict in one safetensors file) and AnimateLCM's (AnimateDiff's own layout, with a kohya-style spatial LoRA),
converted with `convert --sampler`, and run against diffusers' own AnimateDiffPipeline set up as the model cards do."""

import json
from pathlib import Path

import PIL.Image
import pytest
import torch
from diffusers import (
    AnimateDiffPipeline,
    AutoencoderKL,
    EulerDiscreteScheduler,
    LCMScheduler,
    MotionAdapter,
    UNet2DConditionModel,
)
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTokenizer

from loopanimate.animate import model_sampling
from loopanimate.cli import main
from loopanimate.models.convert import convert_unet, is_diffusers_motion_layout, max_difference
from loopanimate.pipelines import load_pipeline
from loopanimate.pipelines.assemble import sd15_scheduler
from loopanimate.pipelines.tiny import tiny_components
from tests.conftest import SIZE, seeded
from tests.test_convert import animatediff_keys, source_model

LIGHTNING = "animatediff_lightning_2step_diffusers.safetensors"
ANIMATELCM = "AnimateLCM_sd15_t2v.ckpt"
LORA = "AnimateLCM_sd15_t2v_lora.safetensors"
LORA_SCALE = 0.8  # AnimateLCM's card: set_adapters(["lcm-lora"], [0.8])
PROMPT, FRAMES = "a red box sways", 8
# Largest pixel difference (frames in [0, 1]) from AnimateDiffPipeline, measured: 1.7e-6 with Lightning's Euler, 1.9e-6
# with LCM and the LoRA (fused here, a live adapter there): float32 rounding. Leading instead of trailing timesteps
# moves pixels by 0.09, the LoRA at 1 instead of 0.8 by 0.06.
PARITY_TOLERANCE = 1e-5


def kohya_lora(unet: UNet2DConditionModel, rank: int = 4, alpha: float = 2.0) -> dict[str, torch.Tensor]:
    """A random LoRA on every attention projection of `unet`'s transformer blocks, under kohya/webui's key names."""
    generator = seeded(5)
    state = {}
    for name, module in unet.named_modules():
        if ".transformer_blocks." not in name or not name.endswith(("to_q", "to_k", "to_v", "to_out.0")):
            continue
        key = "lora_unet_" + name.replace(".", "_")
        state[f"{key}.lora_down.weight"] = torch.randn(rank, module.in_features, generator=generator) * 0.3
        state[f"{key}.lora_up.weight"] = torch.randn(module.out_features, rank, generator=generator) * 0.3
        state[f"{key}.alpha"] = torch.tensor(alpha)
    return state


@pytest.fixture(scope="module")
def files(tmp_path_factory, sources):
    """Lightning's and AnimateLCM's files for the same tiny adapter, a LoRA, and a diffusers SD folder."""
    unet, adapter = sources
    folder = tmp_path_factory.mktemp("few-step")
    save_file({key: value.contiguous() for key, value in adapter.state_dict().items()}, folder / LIGHTNING)
    torch.save(animatediff_keys(adapter), folder / ANIMATELCM)
    save_file(kohya_lora(unet), folder / LORA)
    components = tiny_components()
    sd = folder / "sd"
    unet.save_pretrained(sd / "unet")
    for name in ("vae", "text_encoder", "tokenizer"):
        components[name].save_pretrained(sd / name)
    components["image_encoder"].save_pretrained(folder / "clip")
    components["feature_extractor"].save_pretrained(folder / "clip")
    return folder


def convert(files, output, module: str, *options: str) -> list[str]:
    return ["convert", "--unet", str(files / "sd"), "--motion-module", str(files / module), "--motion-heads", "8",
            "-o", str(output), *options]  # fmt: skip


def reference(files, sources, scheduler) -> AnimateDiffPipeline:
    """diffusers' AnimateDiffPipeline on the SD folder and the source adapter, with `scheduler`."""
    adapter = sources[1]
    copy = MotionAdapter.from_config(adapter.config)
    copy.load_state_dict(adapter.state_dict())
    sd = files / "sd"
    pipe = AnimateDiffPipeline(
        vae=AutoencoderKL.from_pretrained(sd / "vae"),
        text_encoder=CLIPTextModel.from_pretrained(sd / "text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(sd / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(sd / "unet"),
        motion_adapter=copy.eval(),
        scheduler=scheduler,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def assert_same_frames(model_dir, peer: AnimateDiffPipeline, guidance: float) -> None:
    """Our pipeline at the folder's own sampling (text to video: conv_in's picture channels are zero) against `peer`
    at the card's settings."""
    pipe = load_pipeline(model_dir)
    pipe.set_progress_bar_config(disable=True)
    sampling = model_sampling(str(model_dir))
    settings = {"num_frames": FRAMES, "height": SIZE, "width": SIZE, "output_type": "np"}
    expected = peer(
        PROMPT, num_inference_steps=sampling["steps"], guidance_scale=guidance, generator=seeded(3), **settings
    ).frames
    actual = pipe(
        PIL.Image.new("RGB", (SIZE, SIZE), (200, 40, 30)),
        PROMPT,
        num_inference_steps=sampling["steps"],
        guidance_scale_text=sampling["guidance_text"],
        guidance_scale_image=sampling["guidance_image"],
        loop_closure="none",
        generator=seeded(3),
        **settings,
    ).frames
    assert expected.shape == actual.shape == (1, FRAMES, SIZE, SIZE, 3)
    torch.testing.assert_close(torch.from_numpy(actual), torch.from_numpy(expected), rtol=0, atol=PARITY_TOLERANCE)


def test_lightnings_file_is_told_from_animatediffs_by_its_keys(sources):
    _, adapter = sources
    assert is_diffusers_motion_layout(adapter.state_dict())
    assert not is_diffusers_motion_layout(animatediff_keys(adapter))


def test_lightnings_diffusers_file_converts_to_exactly_the_source(files, sources):
    model, report = convert_unet(files / "sd", files / LIGHTNING, heads=8)
    assert report["missing"] == [] and report["unexpected"] == []
    assert max_difference(source_model(sources), model) < 1e-5


def test_lightning_gives_animatediff_pipelines_frames(files, sources, tmp_path, capsys):
    assert main(convert(files, tmp_path / "model", LIGHTNING, "--sampler", "lightning")) == 0, capsys.readouterr().err
    assert "sampler lightning: EulerDiscreteScheduler, 2 steps, guidance 1" in capsys.readouterr().out
    assert json.loads((tmp_path / "model" / "sampling.json").read_text())["steps"] == 2  # the file name's 2step
    card = EulerDiscreteScheduler.from_config(
        sd15_scheduler().config, timestep_spacing="trailing", beta_schedule="linear"
    )
    assert_same_frames(tmp_path / "model", reference(files, sources, card), guidance=1.0)


def test_animatelcm_with_its_lora_gives_animatediff_pipelines_frames(files, sources, tmp_path, capsys):
    options = ("--lora", str(files / LORA), "--lora-scale", str(LORA_SCALE), "--sampler", "lcm")
    assert main(convert(files, tmp_path / "model", ANIMATELCM, *options)) == 0, capsys.readouterr().err
    # 4 transformer blocks (down, mid, 2 up) x 2 attentions x 4 projections
    assert "fused 32 LoRA layers at scale 0.8" in capsys.readouterr().out
    peer = reference(files, sources, LCMScheduler.from_config(sd15_scheduler().config, beta_schedule="linear"))
    peer.load_lora_weights(str(files / LORA), adapter_name="lcm-lora")
    peer.set_adapters(["lcm-lora"], [LORA_SCALE])
    assert_same_frames(tmp_path / "model", peer, guidance=2.0)


def test_a_converted_few_step_model_needs_no_image_encoder(files, tmp_path):
    assert main(convert(files, tmp_path / "model", LIGHTNING, "--sampler", "lightning")) == 0
    assert load_pipeline(tmp_path / "model").unet.config.context_routing == "text"


@pytest.fixture(scope="module")
def foreign_lora(sources, tmp_path_factory):
    """A LoRA for a layer this UNet does not have (a third down block), beside ones it has."""
    state = kohya_lora(sources[0])
    key = "lora_unet_down_blocks_2_attentions_0_transformer_blocks_0_attn1_to_q"
    state.update({f"{key}.lora_down.weight": torch.ones(4, 32), f"{key}.lora_up.weight": torch.ones(32, 4)})
    path = tmp_path_factory.mktemp("foreign") / "sdxl_lora.safetensors"
    save_file(state, path)
    return path


@pytest.fixture(scope="module")
def text_encoder_lora(sources, tmp_path_factory):
    """A LoRA for the UNet and for the text encoder, which convert does not fuse."""
    key = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    state = {**kohya_lora(sources[0]), f"{key}.lora_down.weight": torch.ones(4, 32)}
    state[f"{key}.lora_up.weight"] = torch.ones(32, 4)
    path = tmp_path_factory.mktemp("text") / "style_lora.safetensors"
    save_file(state, path)
    return path


@pytest.mark.parametrize(
    ("module", "options", "message"),
    [
        (LIGHTNING, ["--steps", "4"], "--steps is for a few-step model: give --sampler"),
        (LIGHTNING, ["--lora-scale", "0.8"], "--lora-scale scales a LoRA: give --lora FILE"),
        (LIGHTNING, ["--lora", "LORA", "--lora-scale", "nan"], "--lora-scale nan is not a number"),
        (LIGHTNING, ["--lora", "LORA", "--lora-scale", "1e9"], "--lora-scale 1e+09 is outside (0, 4]"),
        (LIGHTNING, ["--lora", "LORA", "--lora-scale", "-1"], "--lora-scale -1 is outside (0, 4]"),
        (LIGHTNING, ["--lora", "gone.safetensors"], "--lora gone.safetensors: no such file or folder"),
        (LIGHTNING, ["--lora", "README"], "is not a .safetensors or .ckpt file"),
        (LIGHTNING, ["--sampler", "lightning", "--steps", "4"], "--steps 4 contradicts"),
        (ANIMATELCM, ["--sampler", "lightning"], "does not say its steps"),
        (LIGHTNING, ["--lora", LIGHTNING], "is not a LoRA (no lora_up/lora_down"),
        (LIGHTNING, ["--lora", "FOREIGN"], "is not a LoRA for this UNet"),
        (LIGHTNING, ["--lora", "TEXT"], "also holds LoRA weights for text_encoder: only the UNet's are fused"),
    ],
)
def test_few_step_mistakes_are_one_line(
    files, foreign_lora, text_encoder_lora, tmp_path, capsys, module, options, message
):
    paths = {"LORA": files / LORA, "FOREIGN": foreign_lora, "TEXT": text_encoder_lora, LIGHTNING: files / LIGHTNING,
             "README": Path(__file__).resolve().parent.parent / "README.md"}  # fmt: skip
    code = main(convert(files, tmp_path / "model", module, *(str(paths.get(option, option)) for option in options)))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "model").exists()


def test_converting_again_over_a_few_step_folder_drops_its_sampling(files, tmp_path):
    assert main(convert(files, tmp_path / "model", LIGHTNING, "--sampler", "lightning")) == 0
    assert main(convert(files, tmp_path / "model", LIGHTNING, "--image-encoder", str(files / "clip"))) == 0
    assert not (tmp_path / "model" / "sampling.json").exists()
