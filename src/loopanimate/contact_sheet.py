"""Contact sheets: a grid of a video's frames with their indices, for docs and for looking at a loop at a glance."""

from __future__ import annotations

import numpy as np
import PIL.Image
import PIL.ImageDraw

from loopanimate.checks import check_int


def check_layout(columns: int, every: int, thumb_width: int) -> None:
    """Raise InvalidArgumentError before any frame is read if the sheet cannot be laid out."""
    check_int("columns", columns, 1, 100)
    check_int("every", every, 1)
    check_int("width", thumb_width, 8, 4096)


def contact_sheet(frames: np.ndarray, columns: int = 6, every: int = 1, thumb_width: int = 160) -> PIL.Image.Image:
    """Every `every`-th frame of `frames` (F, H, W, 3) uint8, `columns` to a row, each labelled with its index."""
    check_layout(columns, every, thumb_width)
    indices = list(range(0, len(frames), every))
    height, width = frames.shape[1:3]
    thumb_height = max(1, round(height * thumb_width / width))
    rows = -(-len(indices) // columns)
    sheet = PIL.Image.new("RGB", (columns * thumb_width, rows * thumb_height), "white")
    draw = PIL.ImageDraw.Draw(sheet)
    for slot, index in enumerate(indices):
        x, y = (slot % columns) * thumb_width, (slot // columns) * thumb_height
        sheet.paste(PIL.Image.fromarray(frames[index]).resize((thumb_width, thumb_height)), (x, y))
        draw.rectangle((x, y, x + 22, y + 12), fill="black")
        draw.text((x + 2, y + 1), str(index), fill="white")
    return sheet
