"""The UNet's input layout and frame positions: the one home of these facts (no torch, so any face may import it)."""

from __future__ import annotations

# conv_in's input, channel by channel: noisy video latent, image latent on conditioned frames, frame mask.
LATENT_CHANNELS = 4
IMAGE_LATENT_CHANNELS = 4
MASK_CHANNELS = 1
CONDITION_CHANNELS = IMAGE_LATENT_CHANNELS + MASK_CHANNELS  # what the pixel-level conditioning adds (SDSLC)
LOOPANIMATE_IN_CHANNELS = LATENT_CHANNELS + CONDITION_CHANNELS  # 9
# The paper's 35 frames plus one spare position (TEMM, paper §2).
LOOPANIMATE_MAX_FRAMES = 36


def is_position_table(key: str) -> bool:
    """A motion module's sinusoidal position table (`*.pe`): recomputed for our 36 positions, never loaded, so a
    32-position AnimateDiff module fits (its 32 rows equal our first 32)."""
    return key.endswith(".pe")
