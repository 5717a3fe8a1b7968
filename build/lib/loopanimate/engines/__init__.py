"""Engines that need no diffusion weights."""

from loopanimate.engines.motion import animate_without_weights
from loopanimate.engines.prompt import MotionPlan, plan_motion

__all__ = ["MotionPlan", "animate_without_weights", "plan_motion"]
