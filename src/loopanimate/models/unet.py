"""LoopAnimateUNet: diffusers' UNetMotionModel with MITDF context routing (paper §1) and 36 frame positions."""

from __future__ import annotations

import functools

import torch
from diffusers import ModelMixin as ModelMixin  # re-exported: see the note below
from diffusers import UNetMotionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from diffusers.models.unets.unet_motion_model import UNetMotionOutput

from loopanimate.models.layout import LOOPANIMATE_IN_CHANNELS, LOOPANIMATE_MAX_FRAMES

# Note: DiffusionPipeline.from_pretrained picks a component's loader by looking its base class
# (`ModelMixin`) up in the module the component's class lives in, so this module must export it.


def context_key(processor_name: str) -> str | None:
    """Which MITDF context a processor reads: 'down', 'mid', 'up', or None for a layer with no cross-attention.

    Only spatial cross-attention (`...attentions.N...attn2`) reads a context; the motion modules
    (`...motion_modules...`) are temporal self-attention and never do.
    """
    if ".attentions." not in processor_name or not processor_name.endswith("attn2.processor"):
        return None
    stage = processor_name.split(".", 1)[0]
    return {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[stage]


class MITDFAttnProcessor(AttnProcessor2_0):
    """Cross-attention that picks its own context from the dict the UNet passes down (MITDF routing)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: dict[str, torch.Tensor] | torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        if isinstance(encoder_hidden_states, dict):
            encoder_hidden_states = encoder_hidden_states[self.key]
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


class LoopAnimateUNet(UNetMotionModel):
    """A latent video UNet whose down blocks see the image tokens and whose mid and up blocks see the text tokens.

    The config is UNetMotionModel's, with `in_channels=9` and `motion_max_seq_length=36` as defaults.
    The routing lives in attention processors, reinstalled on every construction, so
    `from_pretrained` gives back a model that routes exactly like the one saved.
    """

    @functools.wraps(UNetMotionModel.__init__)  # keeps the signature ConfigMixin reads the config keys from
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("in_channels", LOOPANIMATE_IN_CHANNELS)
        kwargs.setdefault("motion_max_seq_length", LOOPANIMATE_MAX_FRAMES)
        super().__init__(*args, **kwargs)
        self.install_mitdf_routing()

    def install_mitdf_routing(self) -> None:
        """Give every spatial cross-attention a processor that reads its MITDF context; leave the rest alone."""
        processors = {}  # set_attn_processor empties the dict it is given: build a fresh one per call
        for name, processor in self.attn_processors.items():
            key = context_key(name)
            processors[name] = processor if key is None else MITDFAttnProcessor(key)
        self.set_attn_processor(processors)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        image_context: torch.Tensor,
        text_context: torch.Tensor,
        **unet_kwargs,
    ) -> UNetMotionOutput | tuple[torch.Tensor]:
        """Predict noise for `sample` (B, C, F, H, W) from image tokens (B, Ni, D) and text tokens (B, Nt, D)."""
        num_frames = sample.shape[2]
        # Spatial layers run on (B * F, ...) batches, so each frame gets its video's context.
        image_context = image_context.repeat_interleave(num_frames, dim=0)  # (B * F, Ni, D)
        text_context = text_context.repeat_interleave(num_frames, dim=0)  # (B * F, Nt, D)
        contexts = {"down": image_context, "mid": text_context, "up": text_context}
        return super().forward(sample, timestep, encoder_hidden_states=contexts, **unet_kwargs)
