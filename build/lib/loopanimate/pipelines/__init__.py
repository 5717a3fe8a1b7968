"""Inference pipelines."""

from loopanimate.pipelines.loading import check_model_dir, load_pipeline
from loopanimate.pipelines.loop_pipeline import LoopAnimatePipeline, combine_guidance

__all__ = ["LoopAnimatePipeline", "check_model_dir", "combine_guidance", "load_pipeline"]
