"""Fitting a picture to a size: cover-and-crop, or shrink to a longest side. (Reading one is `reader.py`.)"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def resize_center_crop(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale (H, W, C) `frame` to cover `size` (height, width), keeping its aspect, and cut out the centre."""
    height, width = size
    scale = max(width / frame.shape[1], height / frame.shape[0])
    cover = (max(width, round(frame.shape[1] * scale)), max(height, round(frame.shape[0] * scale)))
    resized = cv2.resize(frame, cover, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[top : top + height, left : left + width]


def fit_image(image: Image.Image, size: tuple[int, int] | None = None, max_side: int | None = None) -> Image.Image:
    """Resize to `size` (height, width), scaling to cover and cropping the centre; or, with no size, shrink so the
    long side is at most `max_side`, keeping the aspect ratio."""
    if size is not None:
        return Image.fromarray(resize_center_crop(np.asarray(image), size))
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    return image
