"""LoopAnimate: one still image and a prompt in, a seamlessly looping video of its salient object out.

`import loopanimate` loads no torch: the model and pipeline classes load on first use (PEP 562), so the weight-free
path and the command line start in a fraction of a second.
"""

from __future__ import annotations

from loopanimate.errors import LoopAnimateError
from loopanimate.lazy import lazy_exports

__version__ = "0.1.0"
_LAZY = {
    "LoopAnimatePipeline": "loopanimate.pipelines.pipeline_loopanimate",
    "LoopAnimateUNet": "loopanimate.models.unet",
}
__all__ = ["LoopAnimateError", "LoopAnimatePipeline", "LoopAnimateUNet", "__version__"]

__getattr__ = lazy_exports(__name__, _LAZY)
