"""LoopAnimateUNet: diffusers' UNetMotionModel with MITDF context routing (paper §1) and 36 frame positions."""

from __future__ import annotations

import inspect

import torch
from diffusers import ModelMixin as ModelMixin  # re-exported: see the note below
from diffusers import UNetMotionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from diffusers.models.unets.unet_motion_model import UNetMotionOutput
from diffusers.utils.accelerate_utils import apply_forward_hook

from loopanimate.errors import InvalidArgumentError
from loopanimate.models.conditioning import Conditioning
from loopanimate.models.layout import LOOPANIMATE_IN_CHANNELS, LOOPANIMATE_MAX_FRAMES

# Which tokens each stage's cross-attention reads. `mitdf` is the paper's; the other two exist for its ablation
# (experiments/mitdf_ablation.py): `everywhere` concatenates image and text tokens in every cross-attention, `text`
# never reads the image tokens (the picture then enters only at conv_in).
CONTEXT_ROUTINGS = ("mitdf", "everywhere", "text")

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

    The config is UNetMotionModel's, with `in_channels=9` and `motion_max_seq_length=36` as defaults, plus
    `context_routing` (`mitdf` unless an ablation says otherwise) and `conditioning` (how conv_in reads the picture:
    a `Conditioning` as a dict; None is the paper's frame-0 condition).
    The routing lives in attention processors, reinstalled on every construction, so
    `from_pretrained` gives back a model that routes exactly like the one saved.
    """

    def __init__(
        self, *args, context_routing: str = CONTEXT_ROUTINGS[0], conditioning: dict | None = None, **kwargs
    ) -> None:
        if context_routing not in CONTEXT_ROUTINGS:
            raise InvalidArgumentError(
                f"context_routing={context_routing!r} is unknown: use one of {', '.join(CONTEXT_ROUTINGS)}"
            )
        kwargs.setdefault("in_channels", LOOPANIMATE_IN_CHANNELS)
        kwargs.setdefault("motion_max_seq_length", LOOPANIMATE_MAX_FRAMES)
        super().__init__(*args, **kwargs)  # registers UNetMotionModel's config keys
        self.conditioning = Conditioning.from_config(conditioning)
        self.register_to_config(context_routing=context_routing, conditioning=self.conditioning.to_config())
        self.install_mitdf_routing()

    # ConfigMixin reads the config keys from the signature: UNetMotionModel's, plus ours.
    __init__.__signature__ = inspect.signature(UNetMotionModel.__init__).replace(
        parameters=[
            *inspect.signature(UNetMotionModel.__init__).parameters.values(),
            inspect.Parameter("context_routing", inspect.Parameter.KEYWORD_ONLY, default=CONTEXT_ROUTINGS[0]),
            inspect.Parameter("conditioning", inspect.Parameter.KEYWORD_ONLY, default=None),
        ]
    )

    @property
    def reads_image_tokens(self) -> bool:
        """False when no cross-attention reads the image tokens (`text` routing, as PIA): no image encoder needed."""
        return self.config.context_routing != "text"

    @property
    def trained_frames(self) -> int:
        """The longest clip one UNet call should see: the trained length, else every motion position."""
        return self.conditioning.trained_frames or self.config.motion_max_seq_length

    @property
    def down_path_reads_image_only(self) -> bool:
        """True when guidance branches that differ only in their text may share the down path (MITDF routing)."""
        return self.config.context_routing == "mitdf"

    def route_contexts(self, image_context: torch.Tensor, text_context: torch.Tensor) -> dict[str, torch.Tensor]:
        """The context each stage's cross-attention reads, by `context_routing`."""
        if self.config.context_routing == "mitdf":
            return {"down": image_context, "mid": text_context, "up": text_context}
        both = torch.cat([image_context, text_context], dim=1)  # (B, Ni + Nt, D)
        shared = both if self.config.context_routing == "everywhere" else text_context
        return {"down": shared, "mid": shared, "up": shared}

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
        contexts = {
            key: context.repeat_interleave(num_frames, dim=0)  # (B * F, N, D)
            for key, context in self.route_contexts(image_context, text_context).items()
        }
        return super().forward(sample, timestep, encoder_hidden_states=contexts, **unet_kwargs)

    def enable_forward_chunking(self, chunk_size: int | None = None, dim: int = 0) -> None:
        """diffusers' feed-forward chunking (a memory lever: the 8x-wide GEGLU hidden layer exists for one chunk at a
        time), except that the motion modules' blocks, whose tokens are (B * H * W, F, C), always chunk over frames
        (dim 1), as diffusers' SVD temporal blocks do: dim 0 there would run one pixel position per chunk. The
        default, chunks of 1 along dim 0, runs the spatial blocks one frame at a time and the motion modules one
        frame position at a time; a larger `chunk_size` must divide every chunked dimension."""
        super().enable_forward_chunking(chunk_size, dim)
        for name, module in self.named_modules():
            if ".motion_modules." in name and isinstance(module, BasicTransformerBlock):
                module.set_chunk_feed_forward(chunk_size or 1, dim=1)

    def compile_blocks(self) -> None:
        """torch.compile every block in place (regional compilation): both `forward` and `forward_shared_down` call
        the blocks, so both run compiled, and a block compiles once for all its repeats."""
        for block in (*self.down_blocks, self.mid_block, *self.up_blocks):
            block.compile()

    @apply_forward_hook  # with model offload, an offloaded UNet moves to the device here too, as in `forward`
    def forward_shared_down(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        image_context: torch.Tensor,
        text_contexts: torch.Tensor,
        one_branch_at_a_time: bool = False,
    ) -> torch.Tensor:
        """MITDF's dividend: the down blocks read only the image tokens, so guidance branches that differ only in their
        text run the down path once. sample (B, C, F, H, W); image_context (B, Ni, D); text_contexts (K * B, Nt, D),
        branch-major. Returns the noise prediction (K * B, 4, F, H, W), as `forward` on the K-fold batch would.
        `one_branch_at_a_time`: the mid and up blocks run once per branch on batch B, not once on K * B (a memory
        lever: the up path holds the peak activations, and the down path's skips are read, never copied)."""
        if not self.down_path_reads_image_only:
            raise InvalidArgumentError(
                f"forward_shared_down needs context_routing='mitdf', not {self.config.context_routing!r}: use forward"
            )
        batch, _, num_frames = sample.shape[:3]
        timesteps = timestep if torch.is_tensor(timestep) else torch.tensor([timestep], device=sample.device)
        timesteps = timesteps.reshape(-1).to(sample.device).expand(batch)
        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=self.dtype))  # (B, D)
        emb = emb.repeat_interleave(num_frames, dim=0)  # (B * F, D): every frame of a video has its time
        hidden = self.conv_in(sample.permute(0, 2, 1, 3, 4).flatten(0, 1))  # (B * F, C, H, W)
        image = {"down": image_context.repeat_interleave(num_frames, dim=0)}  # (B * F, Ni, D)
        residuals = (hidden,)
        for block in self.down_blocks:
            context = {"encoder_hidden_states": image} if getattr(block, "has_cross_attention", False) else {}
            hidden, block_residuals = block(hidden_states=hidden, temb=emb, num_frames=num_frames, **context)
            residuals += block_residuals
        groups = text_contexts.split(batch) if one_branch_at_a_time else (text_contexts,)
        odd_size = any(side % 2**self.num_upsamplers for side in sample.shape[-2:])
        outputs = [self.mid_and_up(hidden, emb, residuals, texts, num_frames, odd_size) for texts in groups]
        return torch.cat(outputs).unflatten(0, (-1, num_frames)).permute(0, 2, 1, 3, 4)  # (K * B, 4, F, H, W)

    def mid_and_up(
        self,
        hidden: torch.Tensor,
        emb: torch.Tensor,
        residuals: tuple[torch.Tensor, ...],
        text_contexts: torch.Tensor,
        num_frames: int,
        odd_size: bool,
    ) -> torch.Tensor:
        """The mid and up blocks for the text branches in `text_contexts` (K * B, Nt, D), continuing from one down path
        at batch B (hidden, emb and residuals at B * F). Returns the noise (K * B * F, 4, H, W), branch-major."""
        branches = text_contexts.shape[0] * num_frames // hidden.shape[0]

        # Every text branch continues from the same down path: (K * B * F, ...), branch-major like text_contexts.
        def per_branch(tensor: torch.Tensor) -> torch.Tensor:
            return tensor if branches == 1 else tensor.repeat(branches, *[1] * (tensor.dim() - 1))

        hidden, emb = per_branch(hidden), per_branch(emb)
        text = text_contexts.repeat_interleave(num_frames, dim=0)  # (K * B * F, Nt, D)
        texts = {"mid": text, "up": text}
        mid_frames = {"num_frames": num_frames} if hasattr(self.mid_block, "motion_modules") else {}
        hidden = self.mid_block(hidden, emb, encoder_hidden_states=texts, **mid_frames)
        for number, block in enumerate(self.up_blocks):
            skips, residuals = residuals[-len(block.resnets) :], residuals[: -len(block.resnets)]
            skips = tuple(map(per_branch, skips))  # repeated only when used: the skips wait at batch B, not K * B
            # Odd sizes: upsample to the skip's size, as diffusers' forward does.
            size = residuals[-1].shape[2:] if odd_size and number < len(self.up_blocks) - 1 else None
            context = {"encoder_hidden_states": texts} if getattr(block, "has_cross_attention", False) else {}
            hidden = block(
                hidden_states=hidden,
                temb=emb,
                res_hidden_states_tuple=skips,
                upsample_size=size,
                num_frames=num_frames,
                **context,
            )
        if self.conv_norm_out:
            hidden = self.conv_act(self.conv_norm_out(hidden))
        return self.conv_out(hidden)  # (K * B * F, 4, H, W)
