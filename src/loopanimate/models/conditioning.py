"""Pixel-level image conditioning: the channels conv_in reads beside the noisy latent, built from the model's settings.

The paper (SDSLC) puts the image latent on frame 0 with a mask of 1 there and zeros elsewhere; PIA puts the image latent
on every frame and a per-frame *affinity* (how alike a frame stays to the picture) in the mask channel, in another
channel order. Both are a `Conditioning` recorded in the UNet's config and read by `frame_conditioning` alone, so a
converted PIA model and a LoopAnimate model run through the same pipeline, closures and masks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from loopanimate.errors import InvalidArgumentError
from loopanimate.models.layout import CONDITION_CHANNELS, IMAGE_LATENT_CHANNELS

CHANNELS = ("noisy", "image", "mask")  # conv_in's three inputs: noisy latent (4), image latent (4), mask (1)
IMAGE_FRAMES = ("conditioned", "all")
MASK_CONTENTS = ("frame", "affinity")
IMAGE_LATENTS = ("mode", "sample")


@dataclass(frozen=True)
class Conditioning:
    """How a model reads its picture at conv_in; stored as the UNet config's `conditioning` (unknown keys refused)."""

    channel_order: tuple[str, ...] = CHANNELS  # conv_in's inputs in order; the noisy latent always comes first
    image_frames: str = "conditioned"  # frames carrying the image latent: `conditioned` (zeros elsewhere) or `all`
    mask: str = "frame"  # the mask channel: `frame` (1 on conditioned frames) or `affinity` (PIA's per-frame values)
    image_latent: str = "mode"  # the VAE posterior's `mode`, or a `sample` drawn from the generator after the noise
    trained_frames: int | None = None  # the clip length the motion modules learned; None: all their positions

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_order", tuple(self.channel_order))  # JSON gives a list back
        if sorted(self.channel_order) != sorted(CHANNELS) or self.channel_order[0] != "noisy":
            raise InvalidArgumentError(
                f"conditioning channel_order {list(self.channel_order)} is unknown: give noisy first, then image and "
                "mask in either order"
            )
        for name, value, allowed in (
            ("image_frames", self.image_frames, IMAGE_FRAMES),
            ("mask", self.mask, MASK_CONTENTS),
            ("image_latent", self.image_latent, IMAGE_LATENTS),
        ):
            if value not in allowed:
                raise InvalidArgumentError(f"conditioning {name}={value!r} is unknown: use one of {', '.join(allowed)}")
        if self.trained_frames is not None and self.trained_frames < 2:
            raise InvalidArgumentError(
                f"conditioning trained_frames={self.trained_frames} is out of range: give 2 or more"
            )

    @classmethod
    def from_config(cls, config: Mapping | Conditioning | None) -> Conditioning:
        """A UNet config's `conditioning` entry (None: the paper's)."""
        if isinstance(config, Conditioning):
            return config
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(config or {}) - fields)
        if unknown:
            raise InvalidArgumentError(f"conditioning has unknown keys {unknown}: use {', '.join(sorted(fields))}")
        return cls(**(config or {}))

    def to_config(self) -> dict:
        return {**dataclasses.asdict(self), "channel_order": list(self.channel_order)}

    @property
    def strength_in_mask(self) -> bool:
        """True when motion strength is the model's own input (the affinity), not a shared share of the noise."""
        return self.mask == "affinity"


PAPER_CONDITIONING = Conditioning()
# PIA (arXiv 2312.13964) as diffusers' PIAPipeline runs it: noisy, mask, image; the image latent on every frame, sampled
# from the VAE posterior; the affinity in the mask channel; motion modules trained on 16 frames.
PIA_CONDITIONING = Conditioning(("noisy", "mask", "image"), "all", "affinity", "sample", 16)


@dataclass(frozen=True)
class AffinityPreset:
    """One of PIA's motion-scale presets: the affinity by distance in frames from the image frame."""

    name: str
    coefficients: tuple[float, ...]  # distance 0, 1, ...; the last value holds for every farther frame
    loop: bool = False  # goes there and back within its length, ending on the image again


# PIA's `motion_scale` presets 0-8, numbered as diffusers' PIAPipeline numbers them (PIA's own repository swaps the
# style-transfer presets 6 and 8): PIA's statistics of how alike real frames stay to the first.
AFFINITY_PRESETS = (
    AffinityPreset("small motion", (1.0, 0.9, 0.85, 0.85, 0.85, 0.8)),
    AffinityPreset("moderate motion", (1.0, 0.8, 0.8, 0.8, 0.79, 0.78, 0.75)),
    AffinityPreset("large motion", (1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.6, 0.5, 0.5)),
    AffinityPreset(
        "small loop", (1.0, 0.9, 0.85, 0.85, 0.85, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.85, 0.85, 0.9, 1.0), loop=True
    ),
    AffinityPreset(
        "moderate loop",
        (1.0, 0.8, 0.8, 0.8, 0.79, 0.78, 0.75, 0.75, 0.75, 0.75, 0.75, 0.78, 0.79, 0.8, 0.8, 1.0),
        loop=True,
    ),
    AffinityPreset(
        "large loop", (1.0, 0.8, 0.7, 0.7, 0.7, 0.7, 0.6, 0.5, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.8, 1.0), loop=True
    ),
    AffinityPreset("style transfer, small motion", (0.5, 0.4, 0.4, 0.4, 0.35, 0.3)),
    AffinityPreset("style transfer, moderate motion", (0.5, 0.4, 0.4, 0.4, 0.35, 0.35, 0.3, 0.25, 0.2)),
    AffinityPreset("style transfer, large motion", (0.5, 0.2)),
)
STRENGTH_PRESET = 2  # motion strength 1 is PIA's large-motion preset; 0 holds every frame at the picture


def affinity_table(motion_scale: int | None, motion_strength: float) -> AffinityPreset:
    """The preset `motion_scale`, or for None the continuous strength: 1 - s * (1 - large motion's affinity)."""
    if motion_scale is None:
        large = AFFINITY_PRESETS[STRENGTH_PRESET]
        return AffinityPreset(
            f"strength {motion_strength:g}", tuple(1 - motion_strength * (1 - c) for c in large.coefficients)
        )
    if not 0 <= motion_scale < len(AFFINITY_PRESETS):
        raise InvalidArgumentError(
            f"motion_scale={motion_scale} is out of range: give 0 to {len(AFFINITY_PRESETS) - 1} (PIA's presets)"
        )
    return AFFINITY_PRESETS[motion_scale]


def frame_affinity(
    num_frames: int,
    conditioned_frames: Sequence[int] = (0,),
    circular: bool = False,
    motion_scale: int | None = None,
    motion_strength: float = 1.0,
) -> list[float]:
    """Each frame's affinity: the table's value at the frame's distance from the nearest conditioned frame.

    On a line (`circular` False) with frame 0 conditioned this is PIA's own `prepare_mask_coef_by_statistics`. On a
    circle (the `cycle` closure) distance runs both ways round, so frames near the end come back towards the picture;
    the same holds when both ends are conditioned. There a loop preset, which already returns within its length, is
    read as its way out only (its first half), so a circle of any length gets one dip and one return.
    """
    preset = affinity_table(motion_scale, motion_strength)
    folded = circular or len(conditioned_frames) > 1
    table = preset.coefficients[: len(preset.coefficients) // 2] if folded and preset.loop else preset.coefficients

    def distance(frame: int, anchor: int) -> int:
        gap = abs(frame - anchor)
        return min(gap, num_frames - gap) if circular else gap

    return [table[min(min(distance(f, c) for c in conditioned_frames), len(table) - 1)] for f in range(num_frames)]


def frame_conditioning(
    image_latents: torch.Tensor,
    num_frames: int,
    conditioned_frames: Sequence[int] = (0,),
    conditioning: Conditioning = PAPER_CONDITIONING,
    circular: bool = False,
    motion_scale: int | None = None,
    motion_strength: float = 1.0,
) -> torch.Tensor:
    """The (B, 5, F, h, w) condition in `conditioning`'s channel order after the noisy latent: image latent on the
    conditioned frames (or all), mask 1 there and 0 elsewhere (or each frame's affinity)."""
    if motion_scale is not None and conditioning.mask != "affinity":
        raise InvalidArgumentError("motion_scale picks a PIA affinity preset: this model's mask channel has none")
    batch, _, height, width = image_latents.shape  # (B, 4, h, w)
    image = image_latents.new_zeros(batch, IMAGE_LATENT_CHANNELS, num_frames, height, width)
    mask = image_latents.new_zeros(batch, CONDITION_CHANNELS - IMAGE_LATENT_CHANNELS, num_frames, height, width)
    image_frames = range(num_frames) if conditioning.image_frames == "all" else conditioned_frames
    for frame in image_frames:
        image[:, :, frame] = image_latents
    if conditioning.mask == "affinity":
        values = frame_affinity(num_frames, conditioned_frames, circular, motion_scale, motion_strength)
        mask[:] = torch.tensor(values, dtype=mask.dtype, device=mask.device).view(1, 1, -1, 1, 1)
    else:
        mask[:, :, list(conditioned_frames)] = 1.0
    parts = {"image": image, "mask": mask}
    return torch.cat([parts[name] for name in conditioning.channel_order[1:]], dim=1)
