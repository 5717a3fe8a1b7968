"""Networks: the LoopAnimate video UNet and its conditioning inputs.

The layout constants import nothing heavy; the torch classes load on first use (PEP 562), so a face that needs only
the facts stays fast.
"""

from __future__ import annotations

from loopanimate.lazy import lazy_exports
from loopanimate.models.layout import CONDITION_CHANNELS, LOOPANIMATE_IN_CHANNELS, LOOPANIMATE_MAX_FRAMES

_LAZY = {
    "LoopAnimateUNet": "loopanimate.models.unet",
    "MITDFAttnProcessor": "loopanimate.models.unet",
    "frame_conditioning": "loopanimate.models.conditioning",
    "Conditioning": "loopanimate.models.conditioning",
    "PIA_CONDITIONING": "loopanimate.models.conditioning",
}

__all__ = ["CONDITION_CHANNELS", "LOOPANIMATE_IN_CHANNELS", "LOOPANIMATE_MAX_FRAMES", *_LAZY]

__getattr__ = lazy_exports(__name__, _LAZY)
