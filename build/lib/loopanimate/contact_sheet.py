"""Contact sheets: a grid of a video's frames with their indices, for docs and for looking at a loop at a glance."""

from __future__ import annotations

import numpy as np
import PIL.Image
import PIL.ImageDraw


def contact_sheet(frames: np.ndarray, columns: int = 6, every: int = 1, thumb_width: int = 160) -> PIL.Image.Image:
    """Every `every`-th frame of `frames` (F, H, W, 3) uint8, `columns` to a row, each labelled with its index."""
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
