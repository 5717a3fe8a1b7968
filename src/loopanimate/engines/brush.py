"""The motion brush: arrows say where and which way things flow or lean, anchors are pins that never move.

Both are given in the input picture's pixels (x right, y down), inline or as a JSON file:

    --arrows "40,200>140,200;300,80>300,20"      x1,y1>x2,y2 per arrow, `;` between arrows
    --arrows arrows.json                         [[x1, y1, x2, y2], ...]
    --anchors "120,310;400,300"                  x,y per pin
    --anchors anchors.json                       [[x, y], ...]
"""

from __future__ import annotations

import json
import re

import cv2
import numpy as np

from loopanimate.errors import InvalidArgumentError

MAX_STROKES = 64  # arrows or anchors: more is a drawing, not directions
PIN_RADIUS = 0.04  # an anchor holds still a disc of this share of the picture's long side, fading over as much again
NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
ARROW = re.compile(f"{NUMBER},{NUMBER}>{NUMBER},{NUMBER}")
ANCHOR = re.compile(f"{NUMBER},{NUMBER}")
FILE_ROWS = {4: "[[x1, y1, x2, y2], ...]", 2: "[[x, y], ...]"}  # what a JSON file holds, by numbers a row


def _read(text: str, what: str, width: int, pattern: re.Pattern, example: str) -> np.ndarray:
    """(N, width) float32 from inline `text` or a JSON file it names; InvalidArgumentError in one line otherwise."""
    if text.strip().lower().endswith(".json"):
        from loopanimate.reader import read_text

        try:
            rows = json.loads(read_text(text.strip(), f"{what} file"))
        except json.JSONDecodeError as error:
            raise InvalidArgumentError(
                f"{what} file {text} is not valid JSON ({error.msg}): write {FILE_ROWS[width]} in it"
            ) from None
        valid = isinstance(rows, list) and all(
            isinstance(row, list)
            and len(row) == width
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
            for row in rows
        )
        if not valid:
            raise InvalidArgumentError(f"{what} file {text} must hold {FILE_ROWS[width]}: lists of {width} numbers")
        values = np.asarray(rows, np.float64).reshape(-1, width)
    else:
        parts = [part for part in text.split(";") if part.strip()]
        matches = [pattern.fullmatch(part) for part in parts]
        if not parts or not all(matches):
            bad = next((part for part, match in zip(parts, matches, strict=True) if not match), text)
            raise InvalidArgumentError(f"{what} {bad.strip()!r} is not understood: give {example}, `;` between them")
        values = np.asarray([[float(v) for v in match.groups()] for match in matches], np.float64)
    if not 1 <= len(values) <= MAX_STROKES:
        raise InvalidArgumentError(f"{what}: give 1 to {MAX_STROKES}, not {len(values)}")
    if not np.isfinite(values).all():
        raise InvalidArgumentError(f"{what}: every coordinate must be a finite number")
    return values.astype(np.float32)


def parse_arrows(text: str) -> np.ndarray:
    """Arrows (N, 4) x1, y1, x2, y2 in picture pixels; a zero-length arrow points nowhere and is refused."""
    arrows = _read(text, "arrows", 4, ARROW, "x1,y1>x2,y2")
    if (np.hypot(arrows[:, 2] - arrows[:, 0], arrows[:, 3] - arrows[:, 1]) < 1).any():
        raise InvalidArgumentError("arrows: an arrow starts and ends at one point: draw it at least 1 pixel long")
    return arrows


def parse_anchors(text: str) -> np.ndarray:
    """Anchors (N, 2) x, y in picture pixels."""
    return _read(text, "anchors", 2, ANCHOR, "x,y")


def check_inside(points: np.ndarray, size: tuple[int, int], what: str) -> None:
    """Every point (x, y) of `points` (N, 2k) inside a picture of `size` (width, height)."""
    width, height = size
    xs, ys = points[:, 0::2], points[:, 1::2]
    if (xs < 0).any() or (ys < 0).any() or (xs > width).any() or (ys > height).any():
        raise InvalidArgumentError(f"{what}: a point lies outside the {width}x{height} picture: give picture pixels")


def pin_weight(shape: tuple[int, int], anchors: np.ndarray | None) -> np.ndarray:
    """(H, W) float32: 1 at the anchors (a disc of PIN_RADIUS of the long side), falling smoothly to 0 past it."""
    weight = np.zeros(shape, np.float32)
    if anchors is None or not len(anchors):
        return weight
    radius = PIN_RADIUS * max(shape)
    for x, y in anchors:
        cv2.circle(weight, (round(float(x)), round(float(y))), max(1, round(radius)), 1.0, -1)
    distance = cv2.distanceTransform((weight == 0).astype(np.uint8), cv2.DIST_L2, 5)
    fade = np.clip(1.0 - distance / radius, 0.0, 1.0)
    return (fade * fade * (3 - 2 * fade)).astype(np.float32)


def mean_direction(arrows: np.ndarray) -> tuple[float, float] | None:
    """The unit vector the arrows point along on average, or None when they cancel."""
    vectors = arrows[:, 2:] - arrows[:, :2]
    vectors /= np.hypot(vectors[:, :1], vectors[:, 1:])
    total = vectors.sum(axis=0)
    length = float(np.hypot(*total))
    return None if length < 1e-3 else (float(total[0] / length), float(total[1] / length))
