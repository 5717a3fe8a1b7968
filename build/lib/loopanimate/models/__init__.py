"""Networks: the LoopAnimate video UNet and its conditioning inputs."""

from loopanimate.models.conditioning import CONDITION_CHANNELS, frame_conditioning
from loopanimate.models.unet import LOOPANIMATE_MAX_FRAMES, LoopAnimateUNet, MITDFAttnProcessor

__all__ = [
    "CONDITION_CHANNELS",
    "LOOPANIMATE_MAX_FRAMES",
    "LoopAnimateUNet",
    "MITDFAttnProcessor",
    "frame_conditioning",
]
