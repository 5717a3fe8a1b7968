"""Reading the input picture: any mode Pillow opens becomes plain RGB."""

from __future__ import annotations

import os

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


def load_image(path: str | os.PathLike) -> Image.Image:
    """Open `path` as an RGB picture, or raise InputImageError saying why not."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError:
        raise InputImageError(f"input image not found: {path} (check the path)") from None
    except IsADirectoryError:
        raise InputImageError(f"input image is a folder: {path} (give one image file)") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputImageError(
            f"not a readable image: {path} ({error.__class__.__name__}); give a PNG, JPEG or WebP file"
        ) from None


def fit_image(image: Image.Image, size: tuple[int, int] | None = None, max_side: int | None = None) -> Image.Image:
    """Resize to `size` (height, width), scaling to cover and cropping the centre; or, with no size, shrink so the
    long side is at most `max_side`, keeping the aspect ratio."""
    if size is not None:
        height, width = size
        scale = max(width / image.width, height / image.height)
        cover = image.resize(
            (max(width, round(image.width * scale)), max(height, round(image.height * scale))), Image.LANCZOS
        )
        left, top = (cover.width - width) // 2, (cover.height - height) // 2
        return cover.crop((left, top, left + width, top + height))
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    return image
