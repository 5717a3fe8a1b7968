"""Three-stage training (paper §3): the config, the stages' trainable sets, the objective and the run on accelerate.

Names load on first use (PEP 562), so a config can be checked without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainConfig": "loopanimate.training.config",
    "load_config": "loopanimate.training.config",
    "select_trainable": "loopanimate.training.trainable",
    "TrainingDivergedError": "loopanimate.training.trainer",
    "train": "loopanimate.training.trainer",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
