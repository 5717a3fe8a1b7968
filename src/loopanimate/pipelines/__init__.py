"""Inference pipelines. Loaded on first use (PEP 562), so importing `loopanimate.pipelines.loop_closure` stays light."""

from __future__ import annotations

from loopanimate.lazy import lazy_exports

_LAZY = {
    "LoopAnimatePipeline": "loopanimate.pipelines.pipeline_loopanimate",
    "combine_guidance": "loopanimate.pipelines.pipeline_loopanimate",
    "check_model_dir": "loopanimate.pipelines.loading",
    "load_pipeline": "loopanimate.pipelines.loading",
}
__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
