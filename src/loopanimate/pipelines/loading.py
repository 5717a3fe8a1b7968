"""Loading a LoopAnimate model folder from local disk only, with errors that say what is missing.

Checking a folder imports no torch, so a face can refuse a bad `--model` in a fraction of a second.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from loopanimate.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

    from loopanimate.pipelines.pipeline_loopanimate import LoopAnimatePipeline

# Files a component folder must hold, by component name; the networks must be safetensors.
REQUIRED_FILES = {
    "unet": ("config.json", "*.safetensors"),
    "vae": ("config.json", "*.safetensors"),
    "image_encoder": ("config.json", "*.safetensors"),
    "text_encoder": ("config.json", "*.safetensors"),
    "scheduler": ("scheduler_config.json",),
    "feature_extractor": ("preprocessor_config.json",),
    "tokenizer": ("tokenizer_config.json",),
}
# Components a model may go without: a UNet that reads no image tokens (a converted PIA model) needs no CLIP vision.
OPTIONAL_COMPONENTS = ("image_encoder", "feature_extractor")
FIX = "make one with `loopanimate init-model --tiny DIR` or `loopanimate convert ... -o DIR`"


def check_model_dir(path: str | os.PathLike) -> None:
    """Raise ModelLoadError naming the first missing piece of a pipeline folder."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"model folder not found: {path} ({FIX})")
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ModelLoadError(f"not a LoopAnimate model folder (no model_index.json): {path} ({FIX})")
    try:
        index = json.loads(index_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelLoadError(f"model_index.json in {path} is not valid JSON: the folder is damaged ({FIX})") from None
    for component, patterns in REQUIRED_FILES.items():
        if component not in index:
            raise ModelLoadError(f"model_index.json in {path} lists no {component!r}: the folder is incomplete ({FIX})")
        if component in OPTIONAL_COMPONENTS and index[component] == [None, None]:
            continue  # saved as absent on purpose
        for pattern in patterns:
            if not any((path / component).glob(pattern)):
                raise ModelLoadError(f"model folder is incomplete: {path / component} has no {pattern} ({FIX})")


def load_pipeline(
    path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> LoopAnimatePipeline:
    """Load a LoopAnimatePipeline from a local folder (never from a hub), on `device` in `dtype` (default float32)."""
    import torch

    from loopanimate.pipelines.pipeline_loopanimate import LoopAnimatePipeline

    check_model_dir(path)
    dtype = dtype or torch.float32
    try:
        pipe = LoopAnimatePipeline.from_pretrained(path, local_files_only=True, use_safetensors=True, dtype=dtype)
    except Exception as error:  # any loader failure is a damaged folder to the user
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else error.__class__.__name__
        raise ModelLoadError(f"cannot load model folder {path}: {detail} ({FIX})") from None
    return pipe.to(device)
