"""Range checks shared by every setting a user gives (command line, web app, batch rows, training configs)."""

from __future__ import annotations

import math
import numbers
import reprlib

from loopanimate.errors import InvalidArgumentError

BRIEF = 80  # characters of a value shown in a message: a megabyte-long value is not repeated back


SHORT_REPR = reprlib.Repr()  # Python 3.11's takes no arguments: set its limits after
SHORT_REPR.maxlevel, SHORT_REPR.maxlist, SHORT_REPR.maxdict = 3, 6, 6
SHORT_REPR.maxstring = SHORT_REPR.maxother = BRIEF


def brief(value) -> str:
    """`repr(value)`, cut to BRIEF characters, without building the whole of it (a YAML "billion laughs" is
    gigabytes of repr): a string says how long it was."""
    text = SHORT_REPR.repr(value)
    if len(text) > BRIEF:
        text = text[:BRIEF] + "..."
    return f"{text} ({len(value)} characters)" if isinstance(value, str) and len(value) > BRIEF else text


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    """`value` as a whole number in [low, high], or InvalidArgumentError naming `name` and the range."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise InvalidArgumentError(f"{name} {brief(value)} is out of range: give a whole number, {bounds}")
    return int(value)


def check_number(name: str, value, low: float, high: float | None = None, low_open: bool = False) -> float:
    """`value` as a finite number from `low` (or above it, `low_open`) to `high`, or InvalidArgumentError."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not real or (value <= low if low_open else value < low) or (high is not None and value > high):
        bounds = (f"above {low:g}" if low_open else f"from {low:g}") + (f" to {high:g}" if high is not None else "")
        raise InvalidArgumentError(f"{name} {brief(value)} is out of range: give a finite number {bounds}")
    return float(value)


def check_device(name: str) -> str:
    """`name` if torch can compute there (cpu, cuda, cuda:1, mps), else InvalidArgumentError naming what exists."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InvalidArgumentError(f"device {name!r} is unknown: give cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA (this torch is a CPU build or no GPU is visible)"
            raise InvalidArgumentError(f"device {name!r} does not exist here: there is {have}; use --device cpu")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidArgumentError(f"device {name!r} does not exist here: MPS is not available; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InvalidArgumentError(f"device {name!r} is not supported: give cpu, cuda, cuda:N or mps")
    return name
