"""The paper's objective metrics (§6) and our seam ratio, as pure functions of tensors.

A video is a float tensor (F, 3, H, W) in [0, 1]; the input image is (3, H, W) in [0, 1]. Metrics that compare
pictures by content take `embed`: a function from (N, 3, H, W) images to (N, D) embeddings (see `embeddings.py`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from loopanimate.evaluation.pixel_metrics import (  # the pixel-only metrics, re-exported beside the others
    MOTION_SIDE,
    frame_step,
    is_closed_loop,
    motion,
    seam_ratio,
)

Embed = Callable[[torch.Tensor], torch.Tensor]
__all__ = [
    "MOTION_SIDE",
    "clip_i",
    "frame_consistency",
    "frame_step",
    "is_closed_loop",
    "loop_consistency",
    "mirror_correlation",
    "motion",
    "mse_f0",
    "seam_ratio",
    "similarity_to_first",
]


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a, b, dim=-1)


def clip_i(video: torch.Tensor, image: torch.Tensor, embed: Embed) -> float:
    """CLIP-I: mean cosine similarity of every frame's embedding to the input's (object fidelity, higher better)."""
    frames, reference = embed(video), embed(image[None])
    return float(_cosine(frames, reference).mean())


def mse_f0(video: torch.Tensor, image: torch.Tensor) -> float:
    """MSE-F0: mean squared error between frame 0 and the input, on the [0, 1] scale, the input resized to the frame."""
    if image.shape[-2:] != video.shape[-2:]:
        image = F.interpolate(image[None], size=video.shape[-2:], mode="bilinear", antialias=True, align_corners=False)[
            0
        ]
    return float(((video[0] - image) ** 2).mean())


def frame_consistency(video: torch.Tensor, embed: Embed) -> float:
    """FC: mean cosine similarity of consecutive frames' embeddings (higher is smoother)."""
    embeddings = embed(video)
    return float(_cosine(embeddings[1:], embeddings[:-1]).mean())


def similarity_to_first(video: torch.Tensor, embed: Embed) -> list[float]:
    """Cosine similarity of every frame to frame 0: the curve the report plots."""
    embeddings = embed(video)
    return _cosine(embeddings, embeddings[:1]).tolist()


def loop_consistency(video: torch.Tensor, embed: Embed) -> float:
    """Loop-C: cosine similarity of the last frame's embedding to the first's (the seam, higher is better)."""
    embeddings = embed(video[[0, -1]])
    return float(_cosine(embeddings[0], embeddings[1]))


def mirror_correlation(video: torch.Tensor) -> float | None:
    """How much frame i looks like frame N-1-i once the still picture is removed: the mean Pearson correlation of the
    pairs' deviations from the clip's mean frame. About 1: played back and forth (a palindrome); about 0 or below:
    not. None when nothing moves."""
    deviations = video - video.mean(dim=0, keepdim=True)
    count = len(video)
    pairs = [(i, count - 1 - i) for i in range(1, count // 2) if i != count - 1 - i]
    values = []
    for i, j in pairs:
        a, b = deviations[i].flatten(), deviations[j].flatten()
        norm = a.norm() * b.norm()
        if norm > 1e-12:
            values.append(float(torch.dot(a, b) / norm))
    return float(np.mean(values)) if values else None
