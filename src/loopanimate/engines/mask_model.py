"""A segmentation model the user has, from a local folder, for the automatic mask (`--mask-model DIR`).

Two kinds, told apart by the folder's `config.json`:
- SAM (`model_type: sam`, transformers' `SamModel` and `SamProcessor`): prompted with the weight-free salient mask's
  box and its most inner point, it returns the object's own outline;
- a semantic segmenter (`AutoModelForSemanticSegmentation`, e.g. SegFormer): the class the prompt names ("the sky",
  "the person") when its labels have it, else the class that overlaps the salient mask most.
Nothing is downloaded and no code from the folder runs (`trust_remote_code` stays off).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import cv2
import numpy as np

from loopanimate.errors import InvalidArgumentError

MIN_SHARE = 0.005  # of the picture: a smaller mask from the model is none, and the salient mask stands in


def check_mask_model(folder: str) -> str:
    """The folder's model type, if it is a local segmentation model folder we can load; else one line."""
    from loopanimate.reader import read_text

    path = Path(folder)
    if not path.is_dir():
        raise InvalidArgumentError(f"mask model folder not found: {folder} (give a local folder: nothing is fetched)")
    try:
        config = json.loads(read_text(path / "config.json", "mask model config"))
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(f"{path / 'config.json'} is not valid JSON ({error.msg})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(kind, str):
        raise InvalidArgumentError(f"{path / 'config.json'} names no model_type: give a transformers model folder")
    if not list(path.glob("*.safetensors")):
        raise InvalidArgumentError(f"mask model folder {folder} has no .safetensors weights (pickles are not loaded)")
    return kind


@functools.lru_cache(maxsize=2)
def load_mask_model(folder: str):
    """(kind, model, processor) from a local folder, loaded once per folder."""
    kind = check_mask_model(folder)
    options = {"local_files_only": True, "trust_remote_code": False, "use_safetensors": True}
    try:
        if kind == "sam":
            from transformers import SamModel, SamProcessor

            return kind, SamModel.from_pretrained(folder, **options).eval(), SamProcessor.from_pretrained(folder)
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

        model = AutoModelForSemanticSegmentation.from_pretrained(folder, **options).eval()
        return kind, model, AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        raise InvalidArgumentError(
            f"cannot load mask model {folder} ({reason}): give a SAM or a semantic-segmentation folder"
        ) from None


def model_mask(folder: str, image: np.ndarray, salient: np.ndarray, prompt: str) -> tuple[np.ndarray | None, str]:
    """The model's mask (H, W) float32 in [0, 1] of `image` (H, W, 3 uint8), or None when it finds nothing, and what
    it is ("the sky", "the object")."""
    import torch

    kind, model, processor = load_mask_model(folder)
    with torch.inference_mode():
        if kind == "sam":
            mask, name = _sam(model, processor, image, salient), "the object"
        else:
            mask, name = _semantic(model, processor, image, salient, prompt)
    if mask is None or (mask > 0.5).mean() < MIN_SHARE:
        return None, name
    return mask.astype(np.float32), name


def _sam(model, processor, image: np.ndarray, salient: np.ndarray) -> np.ndarray:
    """SAM prompted with the salient mask's box and its most inner point."""
    import torch

    binary = (salient > 0.5).astype(np.uint8)
    ys, xs = np.nonzero(binary)
    if not len(xs):
        ys, xs = np.nonzero(np.ones_like(binary))
    box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    depth = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(depth.argmax()), depth.shape)
    inputs = processor(images=image, input_boxes=[[box]], input_points=[[[[float(x), float(y)]]]], return_tensors="pt")
    outputs = model(**inputs, multimask_output=False)
    masks = processor.image_processor.post_process_masks(
        outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"], binarize=False
    )
    return torch.sigmoid(masks[0][0, 0].float()).numpy()


def _semantic(model, processor, image: np.ndarray, salient: np.ndarray, prompt: str) -> tuple[np.ndarray, str]:
    """The class the prompt names, else the one overlapping the salient mask most."""
    import torch

    logits = model(**processor(images=image, return_tensors="pt")).logits  # (1, C, h, w)
    size = image.shape[:2]
    classes = torch.nn.functional.interpolate(logits, size=size, mode="bilinear").argmax(dim=1)[0].numpy()
    labels = {int(index): str(name).lower() for index, name in model.config.id2label.items()}
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    named = [index for index, name in labels.items() if words & set(re.findall(r"[a-z]+", name))]
    if named:
        chosen = max(named, key=lambda index: int((classes == index).sum()))
    else:
        inside = salient > 0.5
        chosen = max(labels, key=lambda index: int(((classes == index) & inside).sum()))
    return (classes == chosen).astype(np.float32), f"the {labels[chosen]}"
