"""The schedulers and sampling defaults of the public few-step motion modules, as their model cards run them in
diffusers' AnimateDiffPipeline: AnimateDiff-Lightning (Euler, trailing timesteps, guidance 1, the steps it was
distilled for) and AnimateLCM (LCM, 6 steps, guidance 2). Both take SD 1.5's betas on a linear schedule."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from diffusers import EulerDiscreteScheduler, LCMScheduler, SchedulerMixin

from loopanimate.errors import InvalidArgumentError


@dataclass(frozen=True)
class FewStepSampler:
    scheduler: type[SchedulerMixin]
    overrides: dict = field(default_factory=dict)  # changes to the SD folder's scheduler config
    steps: int | None = None  # None: the steps the file name says (Lightning's `4step`), or --steps
    guidance: float = 1.0


SAMPLERS = {
    "lightning": FewStepSampler(EulerDiscreteScheduler, {"timestep_spacing": "trailing", "beta_schedule": "linear"}),
    "lcm": FewStepSampler(LCMScheduler, {"beta_schedule": "linear"}, steps=6, guidance=2.0),
}


def sampler_steps(name: str, motion_module: str | os.PathLike, steps: int | None) -> int:
    """The steps `name` samples with: `steps` if given; else the sampler's own, or for Lightning the N of the file's
    `Nstep` (each of its files is distilled for one step count, and says which in its name)."""
    said = re.search(r"(\d+)step", Path(motion_module).name)
    if name == "lightning" and said and steps is not None and steps != int(said.group(1)):
        raise InvalidArgumentError(
            f"--steps {steps} contradicts {Path(motion_module).name}, distilled for {said.group(1)} steps: drop --steps"
        )
    resolved = steps or SAMPLERS[name].steps or (int(said.group(1)) if said else None)
    if resolved is None:
        raise InvalidArgumentError(
            f"{Path(motion_module).name} does not say its steps (Lightning's files end in _Nstep_diffusers): pass "
            "--steps N, the steps it was distilled for (1, 2, 4 or 8)"
        )
    return resolved


def sampling_defaults(name: str, steps: int) -> dict:
    """`sampling.json` for a model folder sampled by `name`: its steps and guidance (a text-routed model has no image
    guidance branch to weigh)."""
    return {"steps": steps, "guidance_text": SAMPLERS[name].guidance, "guidance_image": 1.0}


def few_step_scheduler(name: str, config: dict) -> SchedulerMixin:
    """`name`'s scheduler on the SD folder's scheduler `config`, as the cards build it (`from_config` with changes)."""
    sampler = SAMPLERS[name]
    return sampler.scheduler.from_config(config, **sampler.overrides)
