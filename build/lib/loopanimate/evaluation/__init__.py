"""The paper's objective metrics, embedding backends and the evaluation report."""

from loopanimate.evaluation.embeddings import ClipEmbedding, WeightFreeEmbedding
from loopanimate.evaluation.metrics import (
    clip_i,
    frame_consistency,
    loop_consistency,
    motion,
    mse_f0,
    seam_ratio,
)

__all__ = [
    "ClipEmbedding",
    "WeightFreeEmbedding",
    "clip_i",
    "frame_consistency",
    "loop_consistency",
    "motion",
    "mse_f0",
    "seam_ratio",
]
