"""`loopanimate convert`: tiny checkpoints in the original LDM and AnimateDiff layouts, converted exactly."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    UNet2DConditionModel,
    UNetMotionModel,
)
from safetensors.torch import save_file

from loopanimate.cli import main
from loopanimate.errors import InvalidArgumentError, ModelLoadError
from loopanimate.models.convert import PUBLISHED_MOTION_HEADS, convert_unet, load_weights, max_difference
from loopanimate.pipelines import load_pipeline
from loopanimate.pipelines.tiny import tiny_components

UNET2D = {
    "sample_size": 8,
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 32,
    "norm_num_groups": 8,
    "attention_head_dim": 2,
}


def ldm_keys(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """The UNet's weights under the original Stable Diffusion (LDM) names."""
    resnet = {
        "norm1": "in_layers.0",
        "conv1": "in_layers.2",
        "time_emb_proj": "emb_layers.1",
        "norm2": "out_layers.0",
        "conv2": "out_layers.3",
        "conv_shortcut": "skip_connection",
    }
    renames = {
        "conv_in": "input_blocks.0.0",
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    layers, blocks = unet.config.layers_per_block, len(unet.config.block_out_channels)
    index = 1
    for d in range(blocks):
        for layer in range(layers):
            renames[f"down_blocks.{d}.resnets.{layer}"] = f"input_blocks.{index}.0"
            renames[f"down_blocks.{d}.attentions.{layer}"] = f"input_blocks.{index}.1"
            index += 1
        if d < blocks - 1:
            renames[f"down_blocks.{d}.downsamplers.0.conv"] = f"input_blocks.{index}.0.op"
            index += 1
    renames.update(
        {
            "mid_block.resnets.0": "middle_block.0",
            "mid_block.attentions.0": "middle_block.1",
            "mid_block.resnets.1": "middle_block.2",
        }
    )
    index = 0
    for u in range(blocks):
        has_attention = "CrossAttn" in unet.config.up_block_types[u]
        for layer in range(layers + 1):
            renames[f"up_blocks.{u}.resnets.{layer}"] = f"output_blocks.{index}.0"
            renames[f"up_blocks.{u}.attentions.{layer}"] = f"output_blocks.{index}.1"
            if layer == layers and u < blocks - 1:
                renames[f"up_blocks.{u}.upsamplers.0.conv"] = f"output_blocks.{index}.{2 if has_attention else 1}.conv"
            index += 1
    state = {}
    for key, value in unet.state_dict().items():
        prefix = max((p for p in renames if key.startswith(p + ".")), key=len)
        rest = key[len(prefix) + 1 :]
        if ".resnets." in prefix:
            first, _, tail = rest.partition(".")
            rest = f"{resnet[first]}.{tail}"
        state[f"model.diffusion_model.{renames[prefix]}.{rest}"] = value.clone()
    return state


def animatediff_keys(adapter: MotionAdapter) -> dict[str, torch.Tensor]:
    """The adapter's weights under AnimateDiff's original names, with its position tables."""
    state = {}
    for key, value in adapter.state_dict().items():
        key = re.sub(r"(motion_modules\.\d+)\.", r"\1.temporal_transformer.", key)
        if key.endswith(".pos_embed.pe"):
            for block in (0, 1):
                state[key.replace(".pos_embed.pe", f".attention_blocks.{block}.pos_encoder.pe")] = value.clone()
            continue
        for new, old in (
            (".attn1.", ".attention_blocks.0."),
            (".attn2.", ".attention_blocks.1."),
            (".norm1.", ".norms.0."),
            (".norm2.", ".norms.1."),
            (".norm3.", ".ff_norm."),
        ):
            key = key.replace(new, old)
        state[key] = value.clone()
    return state


def random_sources(heads: int = 8, **adapter_options) -> tuple[UNet2DConditionModel, MotionAdapter]:
    """A tiny SD UNet and a motion adapter for it with `heads` attention heads (AnimateDiff's, or PIA's with
    `conv_in_channels=9`), every weight random and reproducible."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET2D).eval()
    adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_num_attention_heads=heads,
        motion_norm_num_groups=8,
        use_motion_mid_block=True,
        motion_max_seq_length=32,
        **adapter_options,
    )
    with torch.no_grad():
        for parameter in adapter.parameters():  # AnimateDiff zero-initialises outputs: make every weight count
            parameter.normal_(0, 0.05)
    return unet, adapter


@pytest.fixture(scope="module")
def files(tmp_path_factory, sources):
    unet, adapter = sources
    folder = tmp_path_factory.mktemp("checkpoints")
    save_file(ldm_keys(unet), folder / "sd15.safetensors")
    torch.save({"state_dict": ldm_keys(unet), "global_step": 1000}, folder / "sd15.ckpt")
    torch.save(animatediff_keys(adapter), folder / "mm_sd_v15_v2.ckpt")
    save_file(animatediff_keys(adapter), folder / "mm.safetensors")
    (folder / "unet_config.json").write_text(json.dumps(UNET2D))
    sd = folder / "sd"  # a diffusers SD folder: unet, vae, text encoder, tokenizer
    components = tiny_components()
    unet.save_pretrained(sd / "unet")
    AutoencoderKL.from_config(components["vae"].config).save_pretrained(sd / "vae")
    components["text_encoder"].save_pretrained(sd / "text_encoder")
    components["tokenizer"].save_pretrained(sd / "tokenizer")
    components["image_encoder"].save_pretrained(folder / "clip")
    components["feature_extractor"].save_pretrained(folder / "clip")
    adapter.save_pretrained(folder / "adapter")
    return folder


def source_model(sources) -> UNetMotionModel:
    unet, adapter = sources
    return UNetMotionModel.from_unet2d(unet, adapter).eval()


@pytest.mark.parametrize(
    ("unet_file", "module_file"), [("sd15.safetensors", "mm_sd_v15_v2.ckpt"), ("sd15.ckpt", "mm.safetensors")]
)
def test_single_files_convert_to_exactly_the_source(files, sources, unet_file, module_file):
    config = {k: v for k, v in UNET2D.items()}
    model, report = convert_unet(files / unet_file, files / module_file, unet_config=config, heads=8)
    assert max_difference(source_model(sources), model) < 1e-5
    assert report["max_difference"] < 1e-5
    assert report["missing"] == [] and report["unexpected"] == []


def test_folders_convert_to_exactly_the_source(files, sources):
    model, _ = convert_unet(files / "sd", files / "adapter")
    assert max_difference(source_model(sources), model, frames=6) < 1e-5


def test_conv_in_grows_with_zero_weights(files, sources):
    model, _ = convert_unet(files / "sd", files / "mm_sd_v15_v2.ckpt", heads=8)
    source = source_model(sources)
    assert model.conv_in.weight.shape[1] == 9
    assert torch.equal(model.conv_in.weight[:, :4], source.conv_in.weight)
    assert not model.conv_in.weight[:, 4:].any()


def test_position_table_grows_to_36_and_keeps_the_first_32(files, sources):
    model, _ = convert_unet(files / "sd", files / "mm_sd_v15_v2.ckpt", heads=8)
    source_tables = {n: b for n, b in source_model(sources).named_buffers() if n.endswith(".pe")}
    tables = {n: b for n, b in model.named_buffers() if n.endswith(".pe")}
    assert tables.keys() == source_tables.keys() and tables
    for name, table in tables.items():
        assert table.shape[1] == 36
        torch.testing.assert_close(table[:, :32], source_tables[name])


def test_convert_command_writes_a_loadable_model(files, tmp_path, capsys):
    code = main(
        [
            "convert",
            "--unet",
            str(files / "sd"),
            "--motion-module",
            str(files / "mm_sd_v15_v2.ckpt"),
            "--motion-heads",
            "8",
            "--image-encoder",
            str(files / "clip"),
            "-o",
            str(tmp_path / "model"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "0 missing and 0 unexpected keys" in out and "conv_in 4 -> 9 channels" in out
    pipe = load_pipeline(tmp_path / "model")
    assert pipe.unet.config.in_channels == 9 and pipe.unet.config.motion_max_seq_length == 36
    assert isinstance(pipe.scheduler, DDIMScheduler)  # the SD folder has no scheduler/
    assert (tmp_path / "model" / "conversion_report.json").is_file()


class Payload:
    """Something that is not a tensor: unpickling it would run code."""


def test_pickled_objects_are_refused(tmp_path, sources):
    torch.save({"state_dict": ldm_keys(sources[0]), "callback": Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(ModelLoadError, match="pickled objects that are not tensors"):
        load_weights(tmp_path / "evil.ckpt")


def test_truncated_safetensors(tmp_path, files):
    data = (files / "mm.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated or not a checkpoint"):
        load_weights(tmp_path / "cut.safetensors")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.ckpt", b"just some text", "truncated or not a checkpoint"),
        ("model.onnx", b"\x00", "unknown checkpoint type"),
    ],
)
def test_wrong_files_get_one_line_errors(files, tmp_path, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    code = main(
        [
            "convert",
            "--unet",
            str(tmp_path / name),
            "--motion-module",
            str(files / "mm.safetensors"),
            "--image-encoder",
            str(files / "clip"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_a_motion_module_as_the_unet_is_refused(files):
    with pytest.raises(ModelLoadError, match="not a Stable Diffusion checkpoint"):
        convert_unet(files / "mm.safetensors", files / "mm.safetensors")


def test_single_file_without_a_vae_folder_says_what_to_pass(files, tmp_path, capsys):
    code = main(
        [
            "convert",
            "--unet",
            str(files / "sd15.safetensors"),
            "--unet-config",
            str(files / "unet_config.json"),
            "--motion-module",
            str(files / "mm.safetensors"),
            "--motion-heads",
            "8",
            "--image-encoder",
            str(files / "clip"),
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "pass --text-encoder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def four_heads(tmp_path_factory) -> tuple:
    """A motion module trained with 4 heads, not AnimateDiff's 8: as a checkpoint file, which does not record them,
    and as a MotionAdapter folder, which does; and diffusers' model of it with the SD UNet of `files`."""
    unet, adapter = random_sources(heads=4)
    folder = tmp_path_factory.mktemp("four_heads")
    torch.save(animatediff_keys(adapter), folder / "mm_4_heads.ckpt")
    adapter.save_pretrained(folder / "adapter")
    return folder, UNetMotionModel.from_unet2d(unet, adapter).eval()


def convert_command(files, module, output, *options: str) -> list[str]:
    return ["convert", "--unet", str(files / "sd"), "--motion-module", str(module), "--image-encoder",
            str(files / "clip"), "-o", str(output), *options]  # fmt: skip


def test_a_module_file_without_motion_heads_fails_in_one_line(files, four_heads, tmp_path, capsys):
    """Nothing in a checkpoint file tells 4 heads from 8 (the self-check compares two models built with the same
    count), so the count must be given: before, this wrote 8 heads and reported a difference of 0.0."""
    folder, _ = four_heads
    code = main(convert_command(files, folder / "mm_4_heads.ckpt", tmp_path / "model"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "does not record its motion modules' attention heads" in err and "--motion-heads N" in err
    assert not (tmp_path / "model").exists()


def test_the_given_head_count_is_written_and_a_wrong_one_changes_the_output(files, four_heads):
    folder, source = four_heads
    model, report = convert_unet(files / "sd", folder / "mm_4_heads.ckpt", heads=4)
    assert model.config.motion_num_attention_heads == 4 and report["motion_heads"] == 4
    assert not report["motion_heads_recorded"]
    assert max_difference(source, model) < 1e-5
    # Heads split the channels: 8 of them compute something else (measured 4.5e-4, above the CLI's 1e-4), while the
    # self-check, whose reference has the same wrong count, sees nothing.
    wrong, wrong_report = convert_unet(files / "sd", folder / "mm_4_heads.ckpt", heads=PUBLISHED_MOTION_HEADS)
    assert max_difference(source, wrong) > 1e-4 and wrong_report["max_difference"] < 1e-5


def test_a_motion_adapter_folder_records_its_heads(files, four_heads):
    folder, source = four_heads
    model, report = convert_unet(files / "sd", folder / "adapter")
    assert model.config.motion_num_attention_heads == 4 and report["motion_heads_recorded"]
    assert max_difference(source, model) < 1e-5
    with pytest.raises(InvalidArgumentError, match=r"--motion-heads 8 contradicts .*, which records 4: drop"):
        convert_unet(files / "sd", folder / "adapter", heads=8)


def test_motion_heads_that_do_not_divide_the_widths_are_refused(files):
    with pytest.raises(InvalidArgumentError, match=r"does not divide the motion modules' widths \(32, 64\): give a"):
        convert_unet(files / "sd", files / "mm.safetensors", heads=3)


@pytest.fixture
def sd_with_scheduler(files, tmp_path):
    """The SD folder of `files` with a scheduler/ of its own: Euler, with a setting DDIM's defaults do not have."""
    sd = tmp_path / "sd"
    shutil.copytree(files / "sd", sd)
    EulerDiscreteScheduler(beta_end=0.02, timestep_spacing="trailing").save_pretrained(sd / "scheduler")
    return sd


def test_the_sd_folders_scheduler_is_kept(files, sd_with_scheduler, tmp_path, capsys):
    command = convert_command(files, files / "mm.safetensors", tmp_path / "model", "--motion-heads", "8")
    command[2] = str(sd_with_scheduler)
    assert main(command) == 0, capsys.readouterr().err
    scheduler = load_pipeline(tmp_path / "model").scheduler
    assert isinstance(scheduler, EulerDiscreteScheduler)
    assert scheduler.config.timestep_spacing == "trailing" and scheduler.config.beta_end == 0.02


def test_a_scheduler_config_naming_no_scheduler_fails_in_one_line(files, sd_with_scheduler, tmp_path, capsys):
    config = sd_with_scheduler / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "_class_name": "NotAScheduler"}))
    command = convert_command(files, files / "mm.safetensors", tmp_path / "model", "--motion-heads", "8")
    command[2] = str(sd_with_scheduler)
    code, err = main(command), capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "names no diffusers scheduler ('NotAScheduler')" in err, err


class Evil:
    """A pickle that would create a file when loaded: it must never be unpickled as code."""

    def __reduce__(self):
        return (open, ("/tmp/loopanimate-convert-pwned", "w"))


def damaged_sd(files, tmp_path, damage: str) -> Path:
    """A copy of the tiny SD folder with its UNet damaged one way."""
    sd = tmp_path / "sd"
    shutil.copytree(files / "sd", sd)
    weights = sd / "unet" / "diffusion_pytorch_model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:200])
    elif damage == "pickle":
        weights.unlink()
        torch.save({"weights": Evil()}, sd / "unet" / "diffusion_pytorch_model.bin")
    elif damage == "wrong types":
        config = json.loads((sd / "unet" / "config.json").read_text())
        (sd / "unet" / "config.json").write_text(json.dumps({**config, "block_out_channels": "x"}))
    return sd


def damaged_adapter(files, tmp_path, damage: str) -> Path:
    """A copy of the tiny MotionAdapter folder, damaged one way."""
    adapter = tmp_path / "adapter"
    shutil.copytree(files / "adapter", adapter)
    if damage == "invalid json":
        (adapter / "config.json").write_text("{")
    elif damage == "truncated":
        weights = next(adapter.glob("*.safetensors"))
        weights.write_bytes(weights.read_bytes()[:200])
    return adapter


@pytest.mark.parametrize(
    ("unet_damage", "adapter_damage", "words"),
    [
        ("truncated", None, "cannot load an SD 1.5 UNet (--unet)"),
        ("pickle", None, "cannot load an SD 1.5 UNet (--unet)"),
        ("wrong types", None, "cannot load an SD 1.5 UNet (--unet)"),
        (None, "invalid json", "cannot load a MotionAdapter (--motion-module)"),
        (None, "truncated", "cannot load a MotionAdapter (--motion-module)"),
    ],
)
def test_a_damaged_source_folder_is_one_line_and_runs_no_code(
    files, tmp_path, capsys, unet_damage, adapter_damage, words
):
    sd = damaged_sd(files, tmp_path, unet_damage) if unet_damage else files / "sd"
    adapter = damaged_adapter(files, tmp_path, adapter_damage) if adapter_damage else files / "adapter"
    argv = ["convert", "--unet", str(sd), "--motion-module", str(adapter), "--image-encoder", str(files / "clip"),
            "-o", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not Path("/tmp/loopanimate-convert-pwned").exists() and not (tmp_path / "out").exists()


def test_a_motion_module_for_another_unet_is_one_line(files, tmp_path, capsys):
    other = MotionAdapter(block_out_channels=(8, 16), motion_layers_per_block=1, motion_norm_num_groups=4,
                          motion_num_attention_heads=2)  # fmt: skip
    save_file(animatediff_keys(other), tmp_path / "other.safetensors")
    assert main(convert_command(files, tmp_path / "other.safetensors", tmp_path / "out", "--motion-heads", "8")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit a motion adapter for this UNet" in err, err
