"""Crash-safe checkpoints: trained parameters, optimizer, schedule, random state and step, renamed into place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from loopanimate.errors import InvalidArgumentError

TRAINABLE_FILE = "trainable.safetensors"
# Spreads the seeds of different processes far apart (a prime, so seed * P + rank never collides for small ranks).
SEED_SPREAD = 1_000_003


class TrainerState:
    """What a checkpoint holds besides weights and optimizer: the step, and the generator of noise and dropout."""

    def __init__(self, seed: int, rank: int, device: torch.device) -> None:
        self.step = 0
        self.generator = torch.Generator(device=device).manual_seed(seed * SEED_SPREAD + rank)

    def state_dict(self) -> dict:
        return {"step": self.step, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])


def find_checkpoint(output: Path, resume: str) -> Path:
    if resume != "latest":
        path = Path(resume)
        if not (path / TRAINABLE_FILE).is_file():
            raise InvalidArgumentError(f"--resume {resume}: not a checkpoint folder (no {TRAINABLE_FILE})")
        return path
    found = sorted((output / "checkpoints").glob("step-*"))
    if not found:
        raise InvalidArgumentError(f"--resume latest: no checkpoint in {output / 'checkpoints'}")
    return found[-1]


def save_checkpoint(accelerator: Accelerator, output: Path, step: int, keep: int) -> None:
    """Write checkpoints/step-NNNNNN via a temporary folder, then keep only the newest `keep`."""
    folder = output / "checkpoints"
    target, tmp = folder / f"step-{step:06d}", folder / f".step-{step:06d}.tmp"
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        for old in sorted(folder.glob("step-*"))[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def save_trained_parameters_only(accelerator: Accelerator, trained_names: list[str]) -> None:
    """Make `accelerator.save_state` write the trained parameters alone (not the frozen UNet), and load them back."""

    def save(models, weights, folder):
        if accelerator.is_main_process:
            model = accelerator.unwrap_model(models[0])
            trained = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
            save_file(trained, Path(folder) / TRAINABLE_FILE)
        weights.clear()  # accelerate would otherwise save the whole model too

    def load(models, folder):
        model = accelerator.unwrap_model(models.pop())
        incompatible = model.load_state_dict(load_file(Path(folder) / TRAINABLE_FILE), strict=False)
        if incompatible.unexpected_keys or set(trained_names) & set(incompatible.missing_keys):
            raise InvalidArgumentError(
                f"checkpoint {folder} was made with another trainable set: resume with its config"
            )

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)
