"""JSONL manifests (training videos, evaluation pairs, batch rows): one object a line, one clear error a bad line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from loopanimate.errors import InvalidArgumentError


def iter_jsonl(source: Path, required: str, example: str) -> Iterator[dict]:
    """Every non-blank line of `source` as a dict holding `required`; a line that is not names its number and shows
    `example`, the line the user should write."""
    with source.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict) or required not in entry:
                raise InvalidArgumentError(f"{source}:{number} is not a manifest line: write {example}")
            yield entry
