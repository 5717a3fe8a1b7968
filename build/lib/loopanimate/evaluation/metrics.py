"""The paper's objective metrics (§6) and our seam ratio, as pure functions of tensors.

A video is a float tensor (F, 3, H, W) in [0, 1]; the input image is (3, H, W) in [0, 1]. Metrics that compare
pictures by content take `embed`: a function from (N, 3, H, W) images to (N, D) embeddings (see `embeddings.py`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

Embed = Callable[[torch.Tensor], torch.Tensor]
MOTION_SIDE = 256  # Motion is measured with the long side resized to this many pixels
CLOSED_LOOP_TOLERANCE = 0.004  # mean absolute difference under which the last frame "is" the first (about 1/255)


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


def _gray_at_motion_size(frame: torch.Tensor) -> np.ndarray:
    gray = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    gray = cv2.cvtColor(gray, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = MOTION_SIDE / max(height, width)
    return cv2.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def motion(video: torch.Tensor) -> float:
    """Motion: mean optical-flow magnitude (OpenCV DIS) between consecutive frames, in pixels per frame with the long
    side at 256 pixels. 0 is a still picture."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grays = [_gray_at_motion_size(frame) for frame in video]
    magnitudes = [
        float(np.linalg.norm(flow.calc(prev, nxt, None), axis=-1).mean()) for prev, nxt in itertools.pairwise(grays)
    ]
    return float(np.mean(magnitudes))


def frame_step(a: torch.Tensor, b: torch.Tensor) -> float:
    """How far apart two frames are: mean absolute difference on the [0, 1] scale."""
    return float((a - b).abs().mean())


def is_closed_loop(video: torch.Tensor) -> bool:
    """Whether the last frame repeats the first (a player would not show it)."""
    return frame_step(video[-1], video[0]) <= CLOSED_LOOP_TOLERANCE


def seam_ratio(video: torch.Tensor) -> float | None:
    """Seam (ours, after Video Textures' jump cost): the step a looping player shows from the last shown frame back to
    frame 0, divided by the median consecutive step. About 1: the seam is invisible; much more: a jump.

    A closed loop's last frame repeats frame 0 and is not shown, so its seam is second-to-last -> first.
    None when the video does not move (no step to compare with).
    """
    shown = video[:-1] if is_closed_loop(video) and len(video) > 2 else video
    steps = [frame_step(a, b) for a, b in itertools.pairwise(shown)]
    typical = float(np.median(steps)) if steps else 0.0
    if typical <= 1e-8:
        return None
    return frame_step(shown[-1], shown[0]) / typical


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
