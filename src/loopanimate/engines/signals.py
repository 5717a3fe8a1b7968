"""The motion engine's clocks: periodic signals that are zero at phase 0, so frame 0 is the picture and the loop's
seam falls at its slowest moment."""

from __future__ import annotations

import numpy as np

from loopanimate.engines.prompt import MotionPlan

HARMONIC = 0.2  # weight of the seeded second harmonic that makes each seed move a little differently


def rise(phase: float, harmonic_phase: float) -> float:
    """A periodic signal in about [0, 1] that rests at phase 0 (value and speed zero), with a seeded second harmonic.

    Resting at phase 0 puts the loop's seam at its slowest moment, so the jump back to frame 0 is the smallest step.
    """
    second = HARMONIC * np.cos(harmonic_phase) * (1 - np.cos(2 * phase)) / 2
    return float((1 - np.cos(phase)) / 2 + second)


def lean(phase: float, harmonic_phase: float) -> float:
    """A two-sided periodic signal in about [-1, 1] that rests at phase 0: out to one side, through the middle, back."""
    return float(np.sin(phase) * (1 - np.cos(phase)) / 1.3 + HARMONIC * np.sin(harmonic_phase) * rise(2 * phase, 0.0))


def eased(phase: float) -> float:
    """The loop's clock for motions with no rest pose (spin, wave, flicker): half speed at the seam, 1.5x mid-cycle.

    Bob, breathe and sway rest at phase 0 by their shape; easing the others puts the jump from the last frame back
    to frame 0 among the smallest steps too.
    """
    return float(phase - np.sin(phase) / 2)


def motion_signals(plan: MotionPlan, phase: float, harmonic_phases: np.ndarray) -> dict[str, float]:
    """Each movement's weight at `phase` (radians): zero at phase 0, periodic; a direction word makes a sway lean to
    that side only."""
    side = plan.direction[0] if plan.direction is not None else 0.0
    leaning = lean(phase, harmonic_phases[1]) if side == 0 else np.sign(side) * rise(phase, 0.0)
    wave = eased(phase)
    return {
        "sway": leaning,
        "turn": -leaning,  # "right" turns clockwise, as a whole spin does
        "bob": rise(phase, harmonic_phases[2]),
        "breathe": rise(phase, harmonic_phases[0]),
        "wave_sin": np.cos(wave) - 1.0,  # sin(k - w) - sin(k) = sin(k)(cos w - 1) - cos(k) sin w
        "wave_cos": -np.sin(wave),
    }
