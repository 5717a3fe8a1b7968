"""Converting Stable Diffusion 1.5 + an AnimateDiff motion module, or + PIA, into a LoopAnimateUNet, exactly.

diffusers does the key maps (`convert_ldm_unet_checkpoint`, `convert_animatediff_checkpoint_to_diffusers`) and builds
the source model (`UNetMotionModel.from_unet2d`, which also joins PIA's 9-channel conv_in to SD's); this module adds
what they lack: safe file loading, reading the adapter's config from its weights, `conv_in` grown to 9 channels with
zero weights (AnimateDiff) or kept (PIA), 36 motion positions, the conditioning the source was trained with written
into the config, and a check that the result equals the source. A checkpoint file does not record its motion
modules' head count and no weight shape shows it, so the check cannot test it: a file needs it given (decision 132).
"""

from __future__ import annotations

import functools
import json
import math
import os
import pickle
import re
from pathlib import Path

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers, convert_ldm_unet_checkpoint
from safetensors.torch import load_file

from loopanimate.errors import InvalidArgumentError, ModelLoadError
from loopanimate.models.conditioning import PAPER_CONDITIONING, PIA_CONDITIONING, Conditioning
from loopanimate.models.folders import component_folder, from_folder
from loopanimate.models.layout import (
    IMAGE_LATENT_CHANNELS,
    LATENT_CHANNELS,
    LOOPANIMATE_IN_CHANNELS,
    LOOPANIMATE_MAX_FRAMES,
    MASK_CHANNELS,
    is_position_table,
)
from loopanimate.models.unet import LoopAnimateUNet
from loopanimate.reader import read_text

# Stable Diffusion 1.5's UNet: diffusers' UNet2DConditionModel defaults with CLIP ViT-L/14's width.
SD15_UNET_CONFIG = {"sample_size": 64, "cross_attention_dim": 768}
# AnimateDiff v1-v3's and PIA's motion-module head count as published; a checkpoint file does not record it.
PUBLISHED_MOTION_HEADS = 8
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# How a source reads the picture, by its conv_in's input channels: a plain motion module (4) gets the paper's frame-0
# condition on new zero channels and MITDF routing; PIA's condition adapter (9) keeps its own conditioning, and reads
# text in every cross-attention as it was trained.
SOURCE_CONDITIONING = {
    LATENT_CHANNELS: (PAPER_CONDITIONING, "mitdf"),
    LOOPANIMATE_IN_CHANNELS: (PIA_CONDITIONING, "text"),
}


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A checkpoint file's tensors: safetensors, or a pickle opened with `weights_only=True` (nothing but tensors and
    plain containers is ever unpickled). A Lightning-style {"state_dict": ...} is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(path)
        elif path.suffix in PICKLE_SUFFIXES:
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise ModelLoadError(f"unknown checkpoint type {path.suffix!r}: give .safetensors or .ckpt (or a folder)")
    except ModelLoadError:
        raise
    except Exception as error:  # safetensors, pickle and zip readers each raise their own kinds on a bad file
        raise _unreadable(path, error) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path} is not a dictionary of tensors: not a model checkpoint")
    return state


def _unreadable(path: Path, error: Exception) -> ModelLoadError:
    if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error):
        return ModelLoadError(
            f"refused {path}: it holds pickled objects that are not tensors; only weights are loaded, never code"
        )
    return ModelLoadError(f"cannot read {path} ({error.__class__.__name__}): truncated or not a checkpoint")


def load_unet2d(path: str | os.PathLike, config: dict | None = None) -> UNet2DConditionModel:
    """An SD 1.5-class UNet from a diffusers folder (the model's or its unet/) or an LDM single file."""
    path = Path(path)
    if path.is_dir():
        folder = component_folder(path, "unet", "config.json", "--unet")
        load = functools.partial(UNet2DConditionModel.from_pretrained, local_files_only=True, use_safetensors=True)
        return from_folder(load, folder, "an SD 1.5 UNet (--unet)")
    state = load_weights(path)
    if not any(key.startswith("model.diffusion_model.") for key in state):
        raise ModelLoadError(f"{path} has no `model.diffusion_model.*` weights: not a Stable Diffusion checkpoint")
    try:
        unet = UNet2DConditionModel(**(config or SD15_UNET_CONFIG))
        converted = convert_ldm_unet_checkpoint(state, dict(unet.config))
        result = unet.load_state_dict(converted, strict=False)
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as error:  # diffusers' own checks, each kind
        raise ModelLoadError(
            f"{path} does not fit the UNet config ({error.__class__.__name__}): give the right one with --unet-config"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelLoadError(
            f"{path} does not fit the UNet config ({len(result.missing_keys)} missing, {len(result.unexpected_keys)} "
            "unexpected weights): give the right config with --unet-config"
        )
    return unet


def adapter_config(state: dict[str, torch.Tensor], unet: UNet2DConditionModel, heads: int) -> dict:
    """A MotionAdapter config read off converted AnimateDiff (or PIA: with a 9-channel conv_in) weights and the UNet
    they go with, with `heads` attention heads in every motion module."""
    widths = tuple(unet.config.block_out_channels)
    if any(width % heads for width in widths):  # each head takes an equal slice of a block's channels
        raise InvalidArgumentError(
            f"--motion-heads {heads} does not divide the motion modules' widths {widths}: give a divisor of "
            f"{math.gcd(*widths)}"
        )
    down_layers = {int(m.group(1)) for key in state if (m := re.match(r"down_blocks\.0\.motion_modules\.(\d+)\.", key))}
    conv_in = state.get("conv_in.weight")  # (C, 9, k, k) in PIA's checkpoint
    if conv_in is not None and conv_in.shape[1] != LOOPANIMATE_IN_CHANNELS:
        raise ModelLoadError(
            f"the motion module's conv_in takes {conv_in.shape[1]} channels: only PIA's {LOOPANIMATE_IN_CHANNELS} "
            "are known"
        )
    return {
        "conv_in_channels": None if conv_in is None else LOOPANIMATE_IN_CHANNELS,
        "block_out_channels": widths,
        "motion_layers_per_block": len(down_layers),
        "motion_mid_block_layers_per_block": 1,
        "motion_num_attention_heads": heads,
        "motion_norm_num_groups": unet.config.norm_num_groups,
        "motion_max_seq_length": 32,
        "use_motion_mid_block": any(key.startswith("mid_block.") for key in state),
    }


def is_diffusers_motion_layout(state: dict[str, torch.Tensor]) -> bool:
    """True for a MotionAdapter state dict saved as one file (AnimateDiff-Lightning's `*_diffusers.safetensors`):
    AnimateDiff's own layout nests every motion module's weights under `temporal_transformer`."""
    return not any(".temporal_transformer." in key for key in state)


def load_motion_adapter(path: str | os.PathLike, unet: UNet2DConditionModel, heads: int | None = None) -> MotionAdapter:
    """An AnimateDiff motion module (v1/v2/v3 `.ckpt`/`.safetensors`, AnimateLCM's), PIA's `pia.ckpt`, a
    MotionAdapter state dict in one file (AnimateDiff-Lightning's), or a diffusers MotionAdapter folder (PIA's
    `PIA-condition-adapter` included). A folder's config records the head count; a file's `heads` must
    be given, since a wrong count changes the output and nothing in the file can show it."""
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"no MotionAdapter in {path}: expected config.json")
        load = functools.partial(MotionAdapter.from_pretrained, local_files_only=True, use_safetensors=True)
        adapter = from_folder(load, path, "a MotionAdapter (--motion-module)")
        recorded = adapter.config.motion_num_attention_heads
        if heads is not None and heads != recorded:
            raise InvalidArgumentError(
                f"--motion-heads {heads} contradicts {path / 'config.json'}, which records {recorded}: drop "
                "--motion-heads"
            )
        return adapter
    state = load_weights(path)
    converted = state if is_diffusers_motion_layout(state) else convert_animatediff_checkpoint_to_diffusers(state)
    if not any(".motion_modules." in key for key in converted):
        raise ModelLoadError(f"{path} has no motion_modules weights: not an AnimateDiff motion module")
    if heads is None:
        raise InvalidArgumentError(
            f"{path} does not record its motion modules' attention heads and weight shapes cannot show them: pass "
            f"--motion-heads N ({PUBLISHED_MOTION_HEADS} for AnimateDiff v1-v3 and PIA as published)"
        )
    adapter = MotionAdapter(**adapter_config(converted, unet, heads))
    try:
        result = adapter.load_state_dict(converted, strict=False)
    except RuntimeError:  # weights of other shapes: a module for another UNet
        raise ModelLoadError(
            f"{path} does not fit a motion adapter for this UNet (other shapes): is it for SD 1.5?"
        ) from None
    # conv_in's bias is SD's own (from_unet2d takes it from the UNet), so a checkpoint need not carry it
    missing = [key for key in result.missing_keys if not is_position_table(key) and key != "conv_in.bias"]
    if missing or result.unexpected_keys:
        raise ModelLoadError(
            f"{path} does not fit a motion adapter for this UNet ({len(missing)} missing, "
            f"{len(result.unexpected_keys)} unexpected weights): is it for SD 1.5?"
        )
    return adapter


def to_loopanimate(
    source: UNetMotionModel, conditioning: Conditioning = PAPER_CONDITIONING, context_routing: str = "mitdf"
) -> tuple[LoopAnimateUNet, dict]:
    """`source` as a LoopAnimateUNet reading its picture as `conditioning` says: conv_in takes 9 channels (new ones
    weighted zero), 36 sinusoidal positions (recomputed, so the first 32 are the source's). Returns the model and a
    report of what was copied."""
    config = {key: value for key, value in source.config.items() if not key.startswith("_")}
    config.update(
        in_channels=LOOPANIMATE_IN_CHANNELS,
        motion_max_seq_length=LOOPANIMATE_MAX_FRAMES,
        conditioning=conditioning.to_config(),
        context_routing=context_routing,
    )
    model = LoopAnimateUNet(**config)
    state = {key: value for key, value in source.state_dict().items() if not is_position_table(key)}
    conv_in = state["conv_in.weight"]  # (C, 4, k, k)
    state["conv_in.weight"] = torch.cat(
        [conv_in, conv_in.new_zeros(conv_in.shape[0], LOOPANIMATE_IN_CHANNELS - conv_in.shape[1], *conv_in.shape[2:])],
        dim=1,
    )
    result = model.load_state_dict(state, strict=False)
    missing = [key for key in result.missing_keys if not is_position_table(key)]
    if missing or result.unexpected_keys:
        raise ModelLoadError(
            f"conversion left {len(missing)} weights missing and {len(result.unexpected_keys)} unexpected"
        )
    report = {
        "tensors": len(state),
        "missing": missing,
        "unexpected": list(result.unexpected_keys),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in model.parameters()),
        "conv_in_channels": [conv_in.shape[1], LOOPANIMATE_IN_CHANNELS],
        "motion_positions": [source.config.motion_max_seq_length, LOOPANIMATE_MAX_FRAMES],
        "motion_heads": source.config.motion_num_attention_heads,
        "conditioning": conditioning.to_config(),
        "context_routing": context_routing,
    }
    return model, report


def channel_indices(conditioning: Conditioning) -> dict[str, list[int]]:
    """conv_in's input channels of each part (noisy, image, mask) in `conditioning`'s channel order."""
    sizes = {"noisy": LATENT_CHANNELS, "image": IMAGE_LATENT_CHANNELS, "mask": MASK_CHANNELS}
    indices, start = {}, 0
    for name in conditioning.channel_order:
        indices[name] = list(range(start, start + sizes[name]))
        start += sizes[name]
    return indices


def switch_conditioning(
    model: LoopAnimateUNet, conditioning: Conditioning, context_routing: str | None = None
) -> LoopAnimateUNet:
    """`model` reading its picture as `conditioning` says, every weight kept (decision 113): conv_in's input channels
    permuted from the model's channel order into the new one, 36 motion positions, `context_routing` (None: the
    model's). On inputs permuted the same way, the result computes what `model` computes."""
    source = channel_indices(model.conditioning)
    order = [index for name in conditioning.channel_order for index in source[name]]
    switched, _ = to_loopanimate(model, conditioning, context_routing or model.config.context_routing)
    with torch.no_grad():
        switched.conv_in.weight.copy_(model.conv_in.weight[:, order])  # (C, 9, k, k) in the new order
    return switched.to(device=model.device, dtype=model.dtype).train(model.training)


@torch.no_grad()
def max_difference(source: UNetMotionModel, converted: LoopAnimateUNet, frames: int = 4, side: int = 8) -> float:
    """Largest output difference on random inputs for every channel the source reads (the new ones zero) and the same
    context in every block: 0 up to float rounding for an exact conversion."""
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, source.config.in_channels, frames, side, side, generator=generator)
    context = torch.randn(1, 7, source.config.cross_attention_dim, generator=generator)
    expected = source(latents, 500, encoder_hidden_states=context.repeat_interleave(frames, dim=0)).sample
    padded = torch.cat(
        [latents, latents.new_zeros(1, LOOPANIMATE_IN_CHANNELS - latents.shape[1], frames, side, side)], dim=1
    )
    actual = converted(padded, 500, image_context=context, text_context=context).sample
    return float((expected - actual).abs().max())


def fuse_lora(unet: UNet2DConditionModel, path: str | os.PathLike, scale: float) -> int:
    """Fuse a spatial LoRA (kohya/webui keys, as AnimateLCM's, or diffusers' own) into `unet` at `scale` through
    diffusers' LoRA loading, then drop its layers: the UNet keeps plain weights. Returns the layers it changed."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.tuners.tuners_utils import BaseTunerLayer

    try:
        state, alphas = StableDiffusionLoraLoaderMixin.lora_state_dict(load_weights(path))
    except ValueError:  # diffusers' renaming of kohya keys names the ones it cannot map
        state, alphas = {}, None
    if not state or not all("lora" in key for key in state):
        raise ModelLoadError(f"{path} is not a LoRA (no lora_up/lora_down or lora_A/lora_B weights): give a LoRA file")
    others = sorted({key.split(".")[0] for key in state if not key.startswith("unet.")})
    if others:
        raise ModelLoadError(
            f"{path} also holds LoRA weights for {', '.join(others)}: only the UNet's are fused; give a UNet LoRA"
        )
    # One LoRA layer per lora_A, in the peft names diffusers' loader turns the file's into before it injects them.
    peft_names = {key.removeprefix("unet."): value for key, value in state.items()}
    if not any("lora_A" in key for key in peft_names):
        peft_names = convert_unet_state_dict_to_peft(peft_names)
    modules = [key for key in peft_names if key.endswith("lora_A.weight")]
    try:
        StableDiffusionLoraLoaderMixin.load_lora_into_unet(state, alphas, unet, adapter_name="spatial")
    except (ValueError, RuntimeError, KeyError):  # peft: no module of that name, or weights of other shapes
        raise ModelLoadError(
            f"{path} is not a LoRA for this UNet (other layers or shapes): is it for SD 1.5?"
        ) from None
    layers = sum(isinstance(module, BaseTunerLayer) for module in unet.modules())
    if layers != len(modules):  # diffusers only logs LoRA weights that found no layer
        raise ModelLoadError(
            f"{path} is not a LoRA for this UNet ({len(modules) - layers} of its {len(modules)} layers are not in "
            "it): is it for SD 1.5?"
        )
    unet.fuse_lora(lora_scale=scale)
    unet.unload_lora()
    return layers


def convert_unet(
    sd_path,
    motion_module_path,
    unet_config: dict | None = None,
    heads: int | None = None,
    lora: str | os.PathLike | None = None,
    lora_scale: float = 1.0,
    context_routing: str | None = None,
):
    """SD 1.5 UNet (with `lora` fused at `lora_scale`) + AnimateDiff motion module or PIA -> (LoopAnimateUNet, report
    with the measured difference). `heads`: the motion modules' attention heads, required for a checkpoint file (a
    folder records them). `context_routing`: None for the source's own (SOURCE_CONDITIONING). The difference is
    measured against diffusers' own model of the same sources, so it tests the conversion, not `heads`: the report
    says whether they were recorded or given."""
    unet2d = load_unet2d(sd_path, unet_config)
    lora_layers = fuse_lora(unet2d, lora, lora_scale) if lora is not None else 0
    adapter = load_motion_adapter(motion_module_path, unet2d, heads)
    source = UNetMotionModel.from_unet2d(unet2d, adapter).eval()
    conditioning, routing = SOURCE_CONDITIONING[source.config.in_channels]
    model, report = to_loopanimate(source, conditioning, context_routing or routing)
    model.eval()
    report["motion_heads_recorded"] = Path(motion_module_path).is_dir()
    if lora is not None:
        report["lora"] = {"file": str(lora), "scale": lora_scale, "layers": lora_layers}
    report["max_difference"] = max_difference(source, model)
    return model, report


def read_unet_config(path: str | os.PathLike | None) -> dict | None:
    if path is None:
        return None
    try:
        config = json.loads(read_text(path, "UNet config"))
    except (InvalidArgumentError, json.JSONDecodeError):
        config = None
    if not isinstance(config, dict):
        raise ModelLoadError(f"cannot read UNet config {path}: give a diffusers UNet config.json (a JSON object)")
    return {key: value for key, value in config.items() if not key.startswith("_")}
