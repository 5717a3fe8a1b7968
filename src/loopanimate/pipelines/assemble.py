"""A LoopAnimate pipeline around a converted UNet, from the user's local component folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import diffusers.schedulers
from diffusers import AutoencoderKL, DDIMScheduler, SchedulerMixin
from transformers import CLIPImageProcessorPil, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from loopanimate.errors import ModelLoadError
from loopanimate.models.folders import component_folder
from loopanimate.models.unet import LoopAnimateUNet
from loopanimate.pipelines.pipeline_loopanimate import LoopAnimatePipeline
from loopanimate.reader import read_text


def sd15_scheduler() -> DDIMScheduler:
    """DDIM with Stable Diffusion 1.5's training betas."""
    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def _folder(explicit: str | os.PathLike | None, sd_folder: Path | None, sub: str, marker: str, flag: str) -> Path:
    """The folder a component comes from: the flag's, or the SD folder's sub-folder."""
    source = explicit if explicit is not None else sd_folder
    if source is None:
        raise ModelLoadError(f"no {sub} given: pass {flag} FOLDER (the SD checkpoint is a single file)")
    return component_folder(source, sub, marker, flag)


def _load(loader, folder: Path, what: str):
    try:
        return loader.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # a missing or damaged folder, whatever the loader raises
        raise ModelLoadError(f"cannot load the {what} from {folder}: {str(error).splitlines()[0][:160]}") from None


def _scheduler(sd_folder: Path | None) -> SchedulerMixin:
    """The SD folder's own scheduler, its class and config kept (decision 132); DDIM with SD 1.5's betas without one."""
    folder = sd_folder / "scheduler" if sd_folder else None
    if folder is None or not (folder / "scheduler_config.json").is_file():
        return sd15_scheduler()
    config_file = folder / "scheduler_config.json"
    # The config names its class, as model_index.json names each component for diffusers' own pipelines.
    try:
        name = json.loads(read_text(config_file, "scheduler config")).get("_class_name")
    except (json.JSONDecodeError, AttributeError):  # not JSON, or JSON but not an object
        name = None
    scheduler_class = getattr(diffusers.schedulers, str(name), None)
    if not (isinstance(scheduler_class, type) and issubclass(scheduler_class, SchedulerMixin)):
        raise ModelLoadError(
            f"{config_file} names no diffusers scheduler ({name!r}): set its _class_name to one, e.g. DDIMScheduler"
        )
    return _load(scheduler_class, folder, "scheduler")


def assemble_pipeline(
    unet: LoopAnimateUNet,
    sd_path: str | os.PathLike,
    vae: str | os.PathLike | None = None,
    text_encoder: str | os.PathLike | None = None,
    image_encoder: str | os.PathLike | None = None,
) -> LoopAnimatePipeline:
    """VAE, text encoder and tokenizer from the SD folder unless given, and its scheduler (DDIM without one); the CLIP
    image encoder and its preprocessing from `image_encoder` (a CLIP vision folder, or a model folder with
    image_encoder/ and feature_extractor/), needed only by a UNet that reads image tokens."""
    sd_folder = Path(sd_path) if Path(sd_path).is_dir() else None
    text_folder = _folder(text_encoder, sd_folder, "text_encoder", "config.json", "--text-encoder")
    tokenizer_folder = _folder(text_encoder, sd_folder, "tokenizer", "tokenizer_config.json", "--text-encoder")
    if image_encoder is None and unet.reads_image_tokens:
        raise ModelLoadError("no image encoder given: pass --image-encoder FOLDER (a CLIP ViT-L/14 vision model)")
    vision, processor = None, None
    if image_encoder is not None:
        image_folder = _folder(image_encoder, None, "image_encoder", "config.json", "--image-encoder")
        processor_folder = _folder(
            image_encoder, None, "feature_extractor", "preprocessor_config.json", "--image-encoder"
        )
        vision = _load(CLIPVisionModelWithProjection, image_folder, "image encoder")
        processor = _load(CLIPImageProcessorPil, processor_folder, "image preprocessor")

    tokenizer = _load(CLIPTokenizer, tokenizer_folder, "tokenizer")
    if len(tokenizer) <= 3:  # offline, an unusable path can give an empty tokenizer instead of an error
        raise ModelLoadError(
            f"the tokenizer in {tokenizer_folder} has no vocabulary: give the folder with vocab.json or tokenizer.json"
        )
    pipe = LoopAnimatePipeline(
        vae=_load(AutoencoderKL, _folder(vae, sd_folder, "vae", "config.json", "--vae"), "VAE"),
        unet=unet,
        image_encoder=vision,
        feature_extractor=processor,
        text_encoder=_load(CLIPTextModel, text_folder, "text encoder"),
        tokenizer=tokenizer,
        scheduler=_scheduler(sd_folder),
    )
    width = unet.config.cross_attention_dim
    widths = {"text encoder hidden size": pipe.text_encoder.config.hidden_size}
    if vision is not None:
        widths["image encoder projection_dim"] = vision.config.projection_dim
    for name, value in widths.items():
        if value != width:
            raise ModelLoadError(
                f"the {name} is {value} but the UNet's cross-attention takes {width}: use matching CLIP models"
            )
    return pipe
