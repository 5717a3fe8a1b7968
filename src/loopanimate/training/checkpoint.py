"""Crash-safe checkpoints that never run code: tensors in safetensors, everything else in JSON, renamed into place.

A folder checkpoints/step-NNNNNN holds, from the main process: `trainable.safetensors` (the trained parameters),
`<name>.json` + `<name>.safetensors` for each shared state (optimizer, scheduler, ema, scaler) and `trainer.json`
(step, process count, the states it holds and, on streamed shards, every process's position in them); and from every
process `rank-R.json` + `rank-R.safetensors` (its noise generator and the python, numpy and torch random states).
Nothing in a checkpoint is ever unpickled.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from loopanimate.errors import InvalidArgumentError
from loopanimate.reader import read_text

TRAINABLE_FILE = "trainable.safetensors"
MARKER = "trainer.json"
FORMAT = 1
# Spreads the seeds of different processes far apart (a prime, so seed * P + rank never collides for small ranks).
SEED_SPREAD = 1_000_003
# Files of accelerate's `save_state` format, whose loading unpickles (and so may run) whatever they hold.
PICKLE_SUFFIXES = (".pkl", ".bin", ".pt", ".pth")


class TrainerState:
    """The step, this process's generator of noise and dropout, and its position in streamed shards (if any)."""

    def __init__(self, seed: int, rank: int, device: torch.device) -> None:
        self.step = 0
        self.position: dict | None = None
        self.generator = torch.Generator(device=device).manual_seed(seed * SEED_SPREAD + rank)


def flatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """`value` (a state dict) as JSON: each tensor moved to `tensors` and named by {"$tensor": key}; dicts and tuples
    marked ({"$dict": [[key, value], ...]}, {"$tuple": [...]}) so integer keys and tuples come back as they were."""
    if isinstance(value, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = value.detach().cpu().contiguous()
        return {"$tensor": key}
    if isinstance(value, dict):
        return {"$dict": [[key, flatten(item, tensors)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {"$tuple": [flatten(item, tensors) for item in value]}
    if isinstance(value, list):
        return [flatten(item, tensors) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a checkpoint cannot hold a {type(value).__name__}: convert it to tensors or JSON values")


def unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `flatten`: raises KeyError or ValueError on a layout `flatten` does not write."""
    if isinstance(value, list):
        return [unflatten(item, tensors) for item in value]
    if not isinstance(value, dict):
        return value
    ((kind, inner),) = value.items()
    if kind == "$tensor":
        return tensors[inner]
    if kind == "$tuple":
        return tuple(unflatten(item, tensors) for item in inner)
    if kind == "$dict":
        return {key: unflatten(item, tensors) for key, item in inner}
    raise ValueError(f"unknown entry {kind!r}")


def write_state(folder: Path, name: str, state: Any) -> None:
    tensors: dict[str, torch.Tensor] = {}
    layout = flatten(state, tensors)
    save_file(tensors, folder / f"{name}.safetensors")
    (folder / f"{name}.json").write_text(json.dumps(layout))


def read_state(folder: Path, name: str, device: torch.device | None = None) -> Any:
    """A state `write_state` wrote, its tensors on `device` (default: the CPU)."""
    layout = json.loads(read_text(folder / f"{name}.json", "checkpoint file"))
    # safetensors refuses "cpu:0", which is how accelerate names the CPU of a rank.
    where = "cpu" if device is None or device.type == "cpu" else str(device)
    return unflatten(layout, load_file(folder / f"{name}.safetensors", device=where))


def random_states(generator: torch.Generator) -> dict:
    """This process's random states: the noise generator, and python's, numpy's and torch's global ones."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "generator": generator.get_state(),
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_random_states(generator: torch.Generator, states: dict) -> None:
    generator.set_state(states["generator"])
    random.setstate(states["python"])
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])


def find_checkpoint(output: Path, resume: str) -> Path:
    """The folder `--resume` names (`latest`: the newest in the run's checkpoints/), refused unless in our format."""
    if resume == "latest":
        found = sorted((output / "checkpoints").glob("step-*"))
        if not found:
            raise InvalidArgumentError(f"--resume latest: no checkpoint in {output / 'checkpoints'}")
        path = found[-1]
    else:
        path = Path(resume)
    if (path / MARKER).is_file():
        return path
    if path.is_dir() and any(p.suffix in PICKLE_SUFFIXES for p in path.iterdir()):
        raise InvalidArgumentError(
            f"--resume {path}: a checkpoint of pickle files (accelerate's format), which could run code when "
            "loaded: not opened; resume from a checkpoint written by this version, or start the stage again"
        )
    raise InvalidArgumentError(f"--resume {path}: not a checkpoint folder (no {MARKER})")


def save_checkpoint(
    accelerator: Accelerator,
    output: Path,
    keep: int,
    trainer: TrainerState,
    unet: torch.nn.Module,
    shared: dict,
    origin: dict | None = None,
) -> None:
    """Write checkpoints/step-NNNNNN via a temporary folder, then keep only the newest `keep` (0: all).

    `shared` maps a name to an object with `state_dict()` that is the same on every process (optimizer, schedule,
    EMA, loss scaler): the main process writes it, and each process writes its own random states. `origin`
    (`stream_origin`, for streamed shards) is written with every process's position."""
    folder = output / "checkpoints"
    target, tmp = folder / f"step-{trainer.step:06d}", folder / f".step-{trainer.step:06d}.tmp"
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)  # a crash's leftover
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    write_state(tmp, f"rank-{accelerator.process_index}", random_states(trainer.generator))
    positions = gather_object([trainer.position]) if origin is not None else None  # every process takes part
    if main:
        model = accelerator.unwrap_model(unet)
        trained = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, tmp / TRAINABLE_FILE)
        for name, holder in shared.items():
            write_state(tmp, name, holder.state_dict())
        summary = {"format": FORMAT, "step": trainer.step, "processes": accelerator.num_processes}
        if origin is not None:
            summary["stream"] = {**origin, "positions": positions}
        (tmp / MARKER).write_text(json.dumps({**summary, "states": sorted(shared)}))
    accelerator.wait_for_everyone()
    if main:
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        for old in sorted(folder.glob("step-*"))[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def load_checkpoint(
    accelerator: Accelerator,
    folder: Path,
    trainer: TrainerState,
    unet: torch.nn.Module,
    trained_names: list[str],
    shared: dict,
    origin: dict | None = None,
) -> None:
    """Restore what `save_checkpoint` wrote into the run's objects; one line if the folder does not fit this run
    (`origin`: this run's `stream_origin`)."""
    try:
        summary = json.loads(read_text(folder / MARKER, "checkpoint file"))
        if summary["format"] != FORMAT:
            raise InvalidArgumentError(f"checkpoint {folder} has format {summary['format']!r}, not {FORMAT}")
        if summary["processes"] != accelerator.num_processes:
            raise InvalidArgumentError(
                f"checkpoint {folder} was written by {summary['processes']} process(es): resume with as many "
                f"(accelerate launch --num_processes {summary['processes']})"
            )
        if sorted(summary["states"]) != sorted(shared):
            raise InvalidArgumentError(
                f"checkpoint {folder} holds {', '.join(summary['states'])}, this run {', '.join(sorted(shared))}: "
                "resume with the checkpoint's config (ema_decay, mixed_precision)"
            )
        check_stream(folder, summary.get("stream"), origin)
        model = accelerator.unwrap_model(unet)
        incompatible = model.load_state_dict(load_file(folder / TRAINABLE_FILE), strict=False)
        if incompatible.unexpected_keys or set(trained_names) & set(incompatible.missing_keys):
            raise InvalidArgumentError(
                f"checkpoint {folder} was made with another trainable set: resume with its config"
            )
        for name, holder in shared.items():
            holder.load_state_dict(read_state(folder, name, accelerator.device))
        set_random_states(trainer.generator, read_state(folder, f"rank-{accelerator.process_index}"))
        trainer.step = int(summary["step"])
        trainer.position = summary["stream"]["positions"][accelerator.process_index] if origin is not None else None
    except InvalidArgumentError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, RecursionError, SafetensorError, OSError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidArgumentError(f"checkpoint {folder} is damaged ({detail}): resume from an earlier one") from None


def check_stream(folder: Path, saved: dict | None, origin: dict | None) -> None:
    """One line when a checkpoint's position in streamed shards (`saved`) is no position in this run's (`origin`)."""
    if saved is not None and origin is None:
        raise InvalidArgumentError(f"checkpoint {folder} was made on the shards {saved['data']}: resume on them")
    if saved is None and origin is not None:
        raise InvalidArgumentError(
            f"checkpoint {folder} holds no position in shards (made on other data, or before positions were "
            "saved): resume with its data, or start the stage again"
        )
    if origin is None:
        return
    if (saved["shards"], saved["digest"]) != (origin["shards"], origin["digest"]):
        raise InvalidArgumentError(
            f"checkpoint {folder} was made on {saved['shards']} shard(s) of {saved['data']}, this run reads "
            f"{origin['shards']} of {origin['data']}: resume on the checkpoint's shards"
        )
    for key in ("num_workers", "seed"):  # each worker's stream and its shuffle depend on both
        if saved[key] != origin[key]:
            raise InvalidArgumentError(
                f"checkpoint {folder} was made with {key} {saved[key]}, this run has {origin[key]}: resume with "
                f"{key}: {saved[key]}"
            )
