"""Reading the input picture: any mode Pillow opens becomes plain RGB."""

from __future__ import annotations

import os

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from loopanimate.errors import InputImageError


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert grayscale, palette and alpha images to RGB; transparent areas become white."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | os.PathLike, what: str = "input image") -> Image.Image:
    """Open `path` as an RGB picture, or raise InputImageError saying why not (`what` names it in the message)."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError:
        raise InputImageError(f"{what} not found: {path} (check the path)") from None
    except IsADirectoryError:
        raise InputImageError(f"{what} is a folder: {path} (give one image file)") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputImageError(
            f"{what} is not a readable image: {path} ({error.__class__.__name__}); give a PNG, JPEG or WebP file"
        ) from None


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
