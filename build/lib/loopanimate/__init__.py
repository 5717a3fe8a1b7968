"""LoopAnimate: one still image and a prompt in, a seamlessly looping video of its salient object out."""

from loopanimate.errors import LoopAnimateError
from loopanimate.models import LoopAnimateUNet
from loopanimate.pipelines import LoopAnimatePipeline

__version__ = "0.1.0"
__all__ = ["LoopAnimateError", "LoopAnimatePipeline", "LoopAnimateUNet", "__version__"]
