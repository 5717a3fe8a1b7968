"""Engines that need no diffusion weights."""

from loopanimate.engines.motion import animate_without_weights, motion_frames
from loopanimate.engines.prompt import MotionPlan, plan_motion

__all__ = ["MotionPlan", "animate_without_weights", "motion_frames", "plan_motion"]
