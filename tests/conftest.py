"""Shared tiny fixtures (diffusers' get_dummy_components pattern): nothing is downloaded."""

import contextlib
import os
import socket
import sys
from collections.abc import Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub id must fail at once, never return an empty object

import numpy as np
import PIL.Image
import pytest
import torch

from loopanimate.pipelines import LoopAnimatePipeline
from loopanimate.pipelines.tiny import tiny_components

SIZE = 64  # pixels a side in pipeline tests: 8x8 latents keep each test well under a second a step


@pytest.fixture
def pipe() -> LoopAnimatePipeline:
    return LoopAnimatePipeline(**tiny_components(seed=0))


@pytest.fixture
def image() -> PIL.Image.Image:
    """A smooth colour picture with an object, so VAE latents and CLIP tokens are not trivial."""
    y, x = np.mgrid[0:96, 0:128] / 128.0
    rgb = np.stack([x, y, 1 - x], axis=-1)
    rgb[30:70, 40:90] = [0.9, 0.2, 0.1]
    return PIL.Image.fromarray((rgb * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def sources():
    """A tiny random SD-1.5-shaped UNet and AnimateDiff motion adapter, once per module (conversion's sources)."""
    from tests.test_convert import random_sources  # a test module's helper: imported when a test asks for it

    return random_sources()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("models") / "tiny"
    LoopAnimatePipeline(**tiny_components(seed=0)).save_pretrained(path)
    return str(path)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def killed_at_call(monkeypatch, owner: object, name: str, number: int) -> Iterator[None]:
    """Inside, the `number`-th call of `owner.name` raises KeyboardInterrupt, as a kill at that moment would (the block
    must be stopped by it); afterwards the function is the original again."""
    original, calls = getattr(owner, name), []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, killed)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(owner, name, original)


def free_port() -> int:
    """A loopback port nobody listens on now, so parallel runs of the suite do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_cpu_processes(*module_args: str) -> tuple[list[str], dict]:
    """`accelerate launch` of `python -m loopanimate ARGS` on two CPU processes over gloo, and its environment.
    accelerate's `--cpu` alone starts one process (multi-CPU goes through mpirun), so the launcher's torchrun path
    runs with the CPU forced."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), "-m", "loopanimate", *module_args]  # fmt: skip
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    return command, environment
