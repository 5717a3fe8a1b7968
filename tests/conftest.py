"""Shared tiny fixtures (diffusers' get_dummy_components pattern): nothing is downloaded."""

import os

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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("models") / "tiny"
    LoopAnimatePipeline(**tiny_components(seed=0)).save_pretrained(path)
    return str(path)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
