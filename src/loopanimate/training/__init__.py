"""Three-stage training (paper §3): the config, the stages' trainable sets, the objective and the run on accelerate."""

from loopanimate.training.config import TrainConfig, load_config
from loopanimate.training.trainable import select_trainable
from loopanimate.training.trainer import TrainingDivergedError, train

__all__ = ["TrainConfig", "TrainingDivergedError", "load_config", "select_trainable", "train"]
