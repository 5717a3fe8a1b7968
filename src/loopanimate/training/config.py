"""Training configuration: one dataclass, a comment per field; YAML files override its defaults; unknown keys fail."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from loopanimate.checks import brief, check_int, check_number
from loopanimate.data.alss import MODES
from loopanimate.data.shards import is_url, shard_urls
from loopanimate.errors import InvalidArgumentError
from loopanimate.models.layout import LOOPANIMATE_MAX_FRAMES
from loopanimate.reader import read_picture, read_text


@dataclass
class TrainConfig:
    # Where things are: a relative path in a YAML file is relative to that file's folder, so a config works from any
    # folder (`--output` on the command line is relative to where `loopanimate train` runs, as any argument).
    model: str = ""  # pipeline folder to continue as it is: converted SD 1.5 + AnimateDiff, or the previous stage's
    init_from: str = ""  # or: a converted PIA folder, switched to the paper's frame-0 condition (decision 113)
    context_routing: str = ""  # with init_from: the UNet's context routing after the switch; empty keeps the source's
    data: str = ""  # training videos: a manifest (WebVid CSV, JSONL, folder), WebDataset shards or a latent cache
    output: str = "runs/train"  # run folder: checkpoints/, final/, log.jsonl, validation/
    # What is trained (paper §3): regular expressions on UNet parameter names; everything else is frozen.
    num_frames: int = 15  # frames per clip: 15, 21, 35 in the paper's stages
    trainable: list[str] = field(default_factory=lambda: [r"^conv_in\."])
    # Data.
    resolution: int = 256  # square training size in pixels (a multiple of 8)
    sampling: str = "alss"  # clip sampling: alss (the paper's), palindrome or plain (ablations)
    max_stride: int = 4  # largest frame stride ALSS may draw (at most MAX_STRIDE)
    batch_size: int = 1  # clips per process per micro-batch
    num_workers: int = 2  # DataLoader worker processes
    # Optimisation.
    learning_rate: float = 1e-4  # AdamW peak learning rate
    adam_betas: tuple[float, float] = (0.9, 0.999)  # AdamW's moment decays, each from 0 up to (not including) 1
    adam_weight_decay: float = 1e-2  # AdamW's decoupled weight decay, 0 to 1
    adam_epsilon: float = 1e-8  # AdamW's denominator term, above 0
    use_8bit_adam: bool = False  # bitsandbytes AdamW8bit (GPU only)
    lr_warmup_steps: int = 100  # linear warm-up, then constant
    max_steps: int = 1000  # optimizer steps (after gradient accumulation)
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0  # gradient clipping
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, more time
    mixed_precision: str = "no"  # no, fp16 or bf16 (GPU); frozen encoders run in that dtype
    ema_decay: float | None = None  # keep an exponential moving average of the trained weights (e.g. 0.9999)
    image_dropout: float = 0.05  # probability of zero CLIP image tokens, for image classifier-free guidance
    text_dropout: float = 0.05  # probability of an empty prompt, for text classifier-free guidance
    # Bookkeeping.
    seed: int = 0
    checkpoint_every: int = 500  # steps between checkpoints (one is always written at the end)
    keep_checkpoints: int = 3  # how many checkpoints to keep
    log_every: int = 10  # steps between log lines
    validate_every: int = 0  # steps between validation GIFs (0: never)
    validation_images: list[str] = field(default_factory=list)  # pictures animated at each validation
    validation_prompts: list[str] = field(default_factory=list)  # one per picture
    validation_steps: int = 20  # denoising steps for validation GIFs

    def check(self) -> None:
        """Raise InvalidArgumentError naming the first setting that cannot work."""
        self.check_types()
        if not 3 <= self.num_frames <= LOOPANIMATE_MAX_FRAMES:  # ALSS needs a start, a peak and the way back
            raise InvalidArgumentError(
                f"num_frames: {self.num_frames} is out of range: give 3 to {LOOPANIMATE_MAX_FRAMES} "
                f"(the motion modules have {LOOPANIMATE_MAX_FRAMES} positions)"
            )
        for name, (low, high) in WHOLE_NUMBERS.items():
            check_int(f"{name}:", getattr(self, name), low, high)
        for name, (low, high) in FRACTIONS.items():
            check_number(f"{name}:", getattr(self, name), low, high)
        check_number("learning_rate:", self.learning_rate, 0.0, 1.0, low_open=True)
        check_number("max_grad_norm:", self.max_grad_norm, 0.0, low_open=True)
        check_number("adam_epsilon:", self.adam_epsilon, 0.0, low_open=True)
        if self.ema_decay is not None:
            check_number("ema_decay:", self.ema_decay, 0.0, 1.0)
        if self.use_8bit_adam and importlib.util.find_spec("bitsandbytes") is None:
            raise InvalidArgumentError("use_8bit_adam: needs bitsandbytes (GPU only): pip install bitsandbytes")
        self.check_betas()
        self.check_patterns()
        self.check_start()
        self.check_output()
        if not self.data:
            raise InvalidArgumentError("data: not set: name a manifest or a latent cache")
        if shard_urls(self.data) is None and not Path(self.data).exists():  # a shard spec checks its own shards
            raise InvalidArgumentError(
                f"data: {self.data} not found: give a manifest, a folder of videos, .tar shards or a latent cache"
            )
        if self.resolution % 8:
            raise InvalidArgumentError(f"resolution: {self.resolution} is not a multiple of 8")
        if self.sampling not in MODES:
            raise InvalidArgumentError(f"sampling: {brief(self.sampling)} is unknown: use one of {', '.join(MODES)}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise InvalidArgumentError(
                f"mixed_precision: {brief(self.mixed_precision)} is unknown: use no, fp16 or bf16"
            )
        if len(self.validation_images) != len(self.validation_prompts):
            raise InvalidArgumentError("validation_images and validation_prompts: give one prompt per image")
        for prompt in self.validation_prompts:
            if not isinstance(prompt, str):
                raise InvalidArgumentError(
                    f"validation_prompts: {brief(prompt)} is not text: quote it in the YAML file"
                )
        for image in self.validation_images:  # read now: a missing picture must not end a run at its first validation
            read_picture(str(image), "validation image")

    def check_output(self) -> None:
        """The run folder: new, or a folder (an earlier run's, to resume); never a file, nor under one."""
        output = Path(self.output).absolute()
        blocker = next((path for path in (output, *output.parents) if path.exists() and not path.is_dir()), None)
        if blocker is not None:
            raise InvalidArgumentError(
                f"output: {self.output} {'is' if blocker == output else f'lies under {blocker}, which is'} a file: "
                "name a run folder"
            )

    def check_start(self) -> None:
        """Exactly one of `model` and `init_from`; `context_routing` only with `init_from`, and one of the UNet's."""
        if self.model and self.init_from:
            raise InvalidArgumentError(
                "model: and init_from: are both set: give one (model continues a model as it is; init_from starts "
                "from a converted PIA model, switched to the paper's frame-0 condition)"
            )
        if not (self.model or self.init_from):
            raise InvalidArgumentError(
                "model: not set: name the model folder to start from (or init_from: a converted PIA model)"
            )
        if not self.context_routing:
            return
        if not self.init_from:
            raise InvalidArgumentError(
                "context_routing: is set without init_from: a model given by model: keeps its own routing"
            )
        from loopanimate.models.unet import CONTEXT_ROUTINGS  # torch loads only when the setting is given

        if self.context_routing not in CONTEXT_ROUTINGS:
            raise InvalidArgumentError(
                f"context_routing: {brief(self.context_routing)} is unknown: use one of {', '.join(CONTEXT_ROUTINGS)}"
            )

    def check_betas(self) -> None:
        """AdamW's two moment decays, each from 0 up to (not including) 1."""
        if len(self.adam_betas) != 2:
            raise InvalidArgumentError(f"adam_betas: {list(self.adam_betas)} should be two numbers, e.g. [0.9, 0.999]")
        for number, beta in enumerate(self.adam_betas):
            check_number(f"adam_betas[{number}]:", beta, 0.0, 1.0)
            if beta == 1:  # a decay of 1 never forgets its first gradient: Adam's bias correction divides by zero
                raise InvalidArgumentError(
                    f"adam_betas[{number}]: 1 is out of range: give a number from 0 up to, not including, 1"
                )

    def check_patterns(self) -> None:
        """Each `trainable` item is a regular expression; whether it matches a module is checked when the UNet loads."""
        if not self.trainable:
            raise InvalidArgumentError("trainable: empty: name at least one module pattern to train")
        for pattern in self.trainable:
            if not isinstance(pattern, str) or not pattern:  # an empty pattern would match, and train, every weight
                raise InvalidArgumentError(
                    f"trainable: {brief(pattern)} is not a module pattern: give a regular expression: '^conv_in\\.'"
                )
            try:
                re.compile(pattern)
            except re.error as error:
                raise InvalidArgumentError(
                    f"trainable: {brief(pattern)} is not a regular expression ({error})"
                ) from None

    def check_types(self) -> None:
        """YAML gives any type: a setting of the wrong kind (`max_steps: many`) is named, not met later as a crash."""
        for setting in dataclasses.fields(self):
            value, kinds = getattr(self, setting.name), TYPES[str(setting.type)]
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            fits = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
            if float in kinds and is_number:
                fits = True  # 1 is a fine learning rate too
            if fits and isinstance(value, list | tuple):
                fits = all(isinstance(item, float | int | str) and not isinstance(item, bool) for item in value)
            if not fits:
                wanted = " or ".join(kind.__name__ for kind in kinds)
                raise InvalidArgumentError(
                    f"{setting.name}: {brief(value)} should be of type {wanted}: see training/config.py"
                )


# The settings' annotations (as written above) -> the Python types a YAML value may have.
TYPES = {
    "str": (str,),
    "int": (int,),
    "float": (float,),
    "bool": (bool,),
    "list[str]": (list,),
    "tuple[float, float]": (tuple,),
    "float | None": (float, type(None)),
}
# ALSS tries every stride up to this one for every clip: 64 is 2 s between frames at 30 fps, and keeps a typo
# (max_stride: 1000000000) from hanging the data loader.
MAX_STRIDE = 64
MAX_STEPS = 10**8  # three years at one step a second: more is a typo
MAX_SEED = 2**32 - 1  # as `animate --seed`; seed * SEED_SPREAD + rank stays inside torch's 64-bit seeds
# Whole-number settings: (least, greatest).
WHOLE_NUMBERS = {
    "resolution": (8, 2048),  # 4x Stable Diffusion 1.5's 512: a 36-frame clip of more fits no GPU
    "max_stride": (1, MAX_STRIDE),
    "batch_size": (1, 1024),
    "num_workers": (0, 256),
    "lr_warmup_steps": (0, MAX_STEPS),
    "max_steps": (1, MAX_STEPS),
    "gradient_accumulation_steps": (1, 4096),
    "seed": (0, MAX_SEED),
    "checkpoint_every": (1, MAX_STEPS),
    "keep_checkpoints": (0, 10_000),
    "log_every": (1, MAX_STEPS),
    "validate_every": (0, MAX_STEPS),
    "validation_steps": (1, 1000),  # as `animate --steps`
}
PATH_SETTINGS = ("model", "init_from", "data", "output")  # and every item of validation_images
# Settings that are fractions: (least, greatest).
FRACTIONS = {"image_dropout": (0.0, 1.0), "text_dropout": (0.0, 1.0), "adam_weight_decay": (0.0, 1.0)}


def resolve_paths(values: dict, folder: Path) -> dict:
    """The config's relative paths joined to `folder` (the config file's); absolute paths and URLs stay as they are."""

    def resolve(value):
        if not isinstance(value, str) or not value or is_url(value):
            return value  # unset, a URL or pipe:, or of a wrong type that `check_types` names
        value = os.path.expanduser(value)
        return value if os.path.isabs(value) else os.path.normpath(folder / value)

    resolved = {key: resolve(values[key]) for key in PATH_SETTINGS if key in values}
    if isinstance(values.get("validation_images"), list):
        resolved["validation_images"] = [resolve(image) for image in values["validation_images"]]
    return {**values, **resolved}


def load_config(path: str | os.PathLike, overrides: dict | None = None) -> TrainConfig:
    """Read a YAML file of TrainConfig fields (any it leaves out keep their defaults), apply `overrides`, check."""
    path = Path(path)
    try:
        values = yaml.safe_load(read_text(path, "config")) or {}
    except yaml.YAMLError as error:
        raise InvalidArgumentError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise InvalidArgumentError(f"{path} is not a config: its values are nested too deeply") from None
    if not isinstance(values, dict):
        raise InvalidArgumentError(f"{path} must be a mapping of settings, e.g. `num_frames: 15`")
    values = resolve_paths(values, path.parent)
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(str(key) for key in values if key not in known)  # YAML keys may be numbers too
    if unknown:
        raise InvalidArgumentError(
            f"unknown setting {unknown[0]!r} in {path}: known settings are {', '.join(sorted(known))}"
        )
    if isinstance(values.get("adam_betas"), list):
        values["adam_betas"] = tuple(values["adam_betas"])
    config = TrainConfig(**values)
    config.check()
    return config
