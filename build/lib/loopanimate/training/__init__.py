"""Three-stage training (paper §3): the config, the stages' trainable sets, and the loop on accelerate."""

from loopanimate.training.config import TrainConfig, load_config
from loopanimate.training.loop import TrainingDivergedError, train
from loopanimate.training.trainable import select_trainable

__all__ = ["TrainConfig", "TrainingDivergedError", "load_config", "select_trainable", "train"]
