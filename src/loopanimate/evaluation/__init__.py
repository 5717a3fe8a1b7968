"""The paper's objective metrics, embedding backends and the evaluation report (loaded on first use, PEP 562)."""

from __future__ import annotations

from loopanimate.lazy import lazy_exports

_LAZY = {
    "ClipEmbedding": "loopanimate.evaluation.embeddings",
    "WeightFreeEmbedding": "loopanimate.evaluation.embeddings",
    "clip_i": "loopanimate.evaluation.metrics",
    "frame_consistency": "loopanimate.evaluation.metrics",
    "loop_consistency": "loopanimate.evaluation.metrics",
    "mse_f0": "loopanimate.evaluation.metrics",
    "motion": "loopanimate.evaluation.pixel_metrics",
    "seam_ratio": "loopanimate.evaluation.pixel_metrics",
}
__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
