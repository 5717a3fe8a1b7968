"""LoopAnimate: one still image and a prompt in, a seamlessly looping video of its salient object out.

`import loopanimate` loads no torch: the model and pipeline classes load on first use (PEP 562), so the weight-free
path and the command line start in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

from loopanimate.errors import LoopAnimateError

__version__ = "0.1.0"
_LAZY = {
    "LoopAnimatePipeline": "loopanimate.pipelines.pipeline_loopanimate",
    "LoopAnimateUNet": "loopanimate.models.unet",
}
__all__ = ["LoopAnimateError", "LoopAnimatePipeline", "LoopAnimateUNet", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
