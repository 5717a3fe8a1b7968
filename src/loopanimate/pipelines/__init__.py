"""Inference pipelines. Loaded on first use (PEP 562), so importing `loopanimate.pipelines.loop_closure` stays light."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "LoopAnimatePipeline": "loopanimate.pipelines.pipeline_loopanimate",
    "combine_guidance": "loopanimate.pipelines.pipeline_loopanimate",
    "check_model_dir": "loopanimate.pipelines.loading",
    "load_pipeline": "loopanimate.pipelines.loading",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
