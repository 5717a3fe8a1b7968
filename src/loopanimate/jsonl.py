"""JSONL manifests (training videos, evaluation pairs, batch rows): one object a line, one clear error a bad line."""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterator, Mapping
from pathlib import Path

from loopanimate.errors import InvalidArgumentError
from loopanimate.reader import read_text

# What a manifest field may hold, by the kind of value it names.
TEXT, WHOLE, NUMBER = "text", "a whole number", "a number"


def field_kind_ok(value: object, kind: str) -> bool:
    if kind == TEXT:
        return isinstance(value, str)
    if isinstance(value, bool):
        return False  # JSON true is no seed
    return isinstance(value, numbers.Integral if kind == WHOLE else numbers.Real)


def iter_jsonl(source: Path, required: str, example: str, kinds: Mapping[str, str] | None = None) -> Iterator[dict]:
    """Every non-blank line of `source` (UTF-8) as a dict holding `required`, each field in `kinds` of its kind
    (`required` is text); a line that is not names its number and shows `example`, the line the user should write."""
    kinds = {required: TEXT, **(kinds or {})}
    for number, line in enumerate(read_text(source, "manifest").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply to be a manifest line
            entry = None
        if not isinstance(entry, dict) or required not in entry:
            raise InvalidArgumentError(f"{source}:{number} is not a manifest line: write {example}")
        for name, kind in kinds.items():
            if name in entry and not field_kind_ok(entry[name], kind):
                raise InvalidArgumentError(
                    f"{source}:{number}: `{name}` is {json.dumps(entry[name])[:40]}; give {kind}, as in {example}"
                )
        yield entry
