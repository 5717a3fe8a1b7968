"""Finding a component's folder: the folder given, or the matching sub-folder of a model folder (`vae/`, ...)."""

from __future__ import annotations

import os
from pathlib import Path

from loopanimate.errors import ModelLoadError


def component_folder(path: str | os.PathLike, component: str, marker: str = "config.json", flag: str = "") -> Path:
    """`path/component` when `path` is a model folder holding it, else `path` itself; either must hold `marker`."""
    root = Path(path)
    folder = root / component if (root / component / marker).is_file() else root
    if not (folder / marker).is_file():
        given = f" ({flag})" if flag else ""
        raise ModelLoadError(
            f"no {component} at {root}{given}: give its folder (with {marker}), or a model folder with {component}/"
        )
    return folder


def from_folder(load, folder: Path, what: str):
    """`load(folder)` (a diffusers `from_pretrained`), its failures one line: a damaged or foreign folder raises
    OSError, ValueError, TypeError or KeyError in diffusers, each worded for its own code."""
    try:
        return load(folder)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        reason = (str(error).strip().splitlines() or [error.__class__.__name__])[0][:200]
        raise ModelLoadError(f"cannot load {what} from {folder} ({reason}): is it the right folder?") from None
