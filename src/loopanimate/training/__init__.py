"""Three-stage training (paper §3): the config, the stages' trainable sets, the objective and the run on accelerate.

Names load on first use (PEP 562), so a config can be checked without loading torch.
"""

from __future__ import annotations

from loopanimate.lazy import lazy_exports

_LAZY = {
    "TrainConfig": "loopanimate.training.config",
    "load_config": "loopanimate.training.config",
    "select_trainable": "loopanimate.training.trainable",
    "TrainingDivergedError": "loopanimate.training.trainer",
    "train": "loopanimate.training.trainer",
}
__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
