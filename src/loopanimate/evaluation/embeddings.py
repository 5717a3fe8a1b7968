"""Picture embeddings for the content metrics: CLIP from a local folder, or a documented weight-free stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from loopanimate.errors import ModelLoadError
from loopanimate.models.folders import component_folder


class WeightFreeEmbedding:
    """Weight-free stand-in for CLIP: a 16x16 colour thumbnail with its mean removed, joined to an 8x4x4 HSV colour
    histogram, each part unit-normed. Equal pictures score 1; it tracks layout and colour, not meaning."""

    name = "weight-free (16x16 thumbnail + HSV histogram)"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        thumbs = F.interpolate(images, size=(16, 16), mode="area").flatten(1)  # (N, 768)
        thumbs = F.normalize(thumbs - thumbs.mean(dim=1, keepdim=True), dim=1)
        histograms = F.normalize(torch.stack([self._histogram(image) for image in images]), dim=1)
        return torch.cat([thumbs, histograms], dim=1) / np.sqrt(2)

    @staticmethod
    def _histogram(image: torch.Tensor) -> torch.Tensor:
        import cv2

        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        histogram = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256])
        return torch.from_numpy(histogram.flatten())


class ClipEmbedding:
    """CLIP image embeddings (`image_embeds`, projected, unit-normed) from a local folder: a CLIP vision model folder,
    or a LoopAnimate model folder (its `image_encoder` and `feature_extractor`)."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu", batch_size: int = 16) -> None:
        from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

        model_dir = component_folder(path, "image_encoder", "config.json", "--clip")
        processor_dir = component_folder(path, "feature_extractor", "preprocessor_config.json", "--clip")
        try:
            self.model = (
                CLIPVisionModelWithProjection.from_pretrained(model_dir, local_files_only=True).eval().to(device)
            )
            self.processor = CLIPImageProcessorPil.from_pretrained(processor_dir, local_files_only=True)
        except Exception as error:  # any loader failure means an unusable folder to the user
            raise ModelLoadError(f"cannot load CLIP from {path}: {str(error).splitlines()[0][:200]}") from None
        self.device, self.batch_size = device, batch_size
        self.name = f"CLIP ({Path(path).name})"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        embeddings = []
        for batch in images.split(self.batch_size):
            arrays = [(image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for image in batch]
            pixels = self.processor(images=arrays, return_tensors="pt").pixel_values.to(self.device)
            embeddings.append(F.normalize(self.model(pixels).image_embeds.float(), dim=-1).cpu())
        return torch.cat(embeddings)


class RememberLast:
    """An embedding that answers a repeated question about the very same tensor from memory: the report's metrics
    each embed the whole video, and CLIP should run on it once. Made per video, so what it keeps stays small."""

    def __init__(self, embed) -> None:
        self.embed, self.name = embed, embed.name
        self._seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id -> (tensor kept alive, its embedding)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if id(images) not in self._seen:
            self._seen[id(images)] = (images, self.embed(images))
        return self._seen[id(images)][1]
