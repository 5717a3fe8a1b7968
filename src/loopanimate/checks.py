"""Range checks shared by every setting a user gives (command line, web app, batch rows, training configs)."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from loopanimate.errors import InvalidArgumentError, OutputPathError


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """`value` as a whole number in [low, high], or InvalidArgumentError naming `name` and the range."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise InvalidArgumentError(f"{name} {value!r} is out of range: give a whole number, {bounds}")
    return int(value)


def check_number(name: str, value, low: float, high: float | None = None, low_open: bool = False) -> float:
    """`value` as a finite number from `low` (or above it, `low_open`) to `high`, or InvalidArgumentError."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not real or (value <= low if low_open else value < low) or (high is not None and value > high):
        bounds = (f"above {low:g}" if low_open else f"from {low:g}") + (f" to {high:g}" if high is not None else "")
        raise InvalidArgumentError(f"{name} {value!r} is out of range: give a finite number {bounds}")
    return float(value)


def check_new_folder(path: str | os.PathLike, marker: str, what: str) -> Path:
    """A folder we may write whole: new, empty, or one of ours (it holds `marker`). Never a user's other folder."""
    path = Path(path)
    if path.name in ("", "..") or path.absolute() == Path.cwd():
        raise OutputPathError(f"output {str(path)!r} is a folder in use: name a new folder for the {what}")
    if path.exists() and not (path.is_dir() and ((path / marker).is_file() or not any(path.iterdir()))):
        raise OutputPathError(
            f"output {path} exists and is not a {what} (no {marker}): nothing was replaced; choose a new folder"
        )
    return path
