"""The one door for what a command reads: pictures (photo, mask, batch row, upload) and text files (manifests,
prompts, configs). Each failure is one line that names the file and the fix.

Pictures: EXIF orientation applied, 16-bit and float pictures scaled to 8 bits, alpha composited over white (a photo)
or multiplied in (a mask), and a pixel limit checked from the header, before a byte is decoded.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from loopanimate.errors import InputImageError, InvalidArgumentError

# 2**27 pixels (134 M, e.g. 13,400 x 10,000): larger than any phone's photo, small enough to decode in memory.
MAX_PICTURE_PIXELS = 2**27
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")  # one channel of more than 8 bits
PictureSource = str | os.PathLike | Image.Image | bytes


def check_regular(path: str | os.PathLike, what: str, error: type[Exception]) -> None:
    """Refuse a pipe, a socket or a device in one line: reading one blocks or never ends."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing, too long a name, no permission: the read says which, in its own words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise error(f"{what} {path} is not a regular file (a pipe, a socket or a device): give a file")


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """`path` as UTF-8 text (a byte-order mark is dropped), or InvalidArgumentError in one line."""
    check_regular(path, what, InvalidArgumentError)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InvalidArgumentError(f"{what} not found: {path} (check the path)") from None
    except IsADirectoryError:
        raise InvalidArgumentError(f"{what} is a folder: {path} (give a text file)") from None
    except OSError as error:
        raise InvalidArgumentError(f"cannot read {what} {path} ({error.strerror}): check its permissions") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidArgumentError(
            f"{what} {path} is not UTF-8 text (byte {error.start}): save it as UTF-8 and try again"
        ) from None


def read_picture(source: PictureSource, what: str = "input image") -> Image.Image:
    """A photo as an upright 8-bit RGB picture (transparent areas white), or InputImageError in one line."""
    image = _open(source, what)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in WIDE_MODES:
        return Image.fromarray(_to_8bit(np.asarray(image), image.mode)).convert("RGB")
    return image.convert("RGB")


def read_mask(source: PictureSource | np.ndarray, what: str = "mask") -> Image.Image:
    """A mask as an upright 8-bit grey picture (white: may move); a transparent area counts as black."""
    if isinstance(source, np.ndarray):
        array = source if source.dtype == np.uint8 else _to_8bit(source, "F")
        return Image.fromarray(array).convert("L")
    image = _open(source, what)
    if image.mode in WIDE_MODES:
        return Image.fromarray(_to_8bit(np.asarray(image), image.mode), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), np.float32)
        grey = np.asarray(Image.fromarray(rgba[..., :3].astype(np.uint8)).convert("L"), np.float32)
        return Image.fromarray((grey * rgba[..., 3] / 255.0).round().astype(np.uint8), "L")
    return image.convert("L")


def check_pixels(width: int, height: int, what: str) -> None:
    """Refuse a picture larger than MAX_PICTURE_PIXELS (a decompression bomb, or a poster no loop needs)."""
    if width * height > MAX_PICTURE_PIXELS:
        raise InputImageError(
            f"{what} is {width}x{height} pixels, more than the {MAX_PICTURE_PIXELS:,} we read: scale it down first"
        )


def _open(source: PictureSource, what: str) -> Image.Image:
    """Decode `source` fully (after the pixel check) and apply its EXIF orientation."""
    if isinstance(source, Image.Image):
        check_pixels(*source.size, f"the {what}")
        return ImageOps.exif_transpose(source)
    name = "the upload" if isinstance(source, bytes) else source
    if not isinstance(source, bytes) and not str(source).strip():
        raise InputImageError(f"the {what}'s path is empty: give a picture file")
    if not isinstance(source, bytes):
        check_regular(source, what, InputImageError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies, below
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        with image:
            check_pixels(*image.size, f"{what} {name}")
            image.load()
            return ImageOps.exif_transpose(image)
    except InputImageError:
        raise
    except FileNotFoundError:
        raise InputImageError(f"{what} not found: {name} (check the path)") from None
    except IsADirectoryError:
        raise InputImageError(f"{what} is a folder: {name} (give one image file)") from None
    except PermissionError:
        raise InputImageError(f"cannot read {what} {name} (permission denied): check its permissions") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        if "truncated" in str(error):
            raise InputImageError(f"{what} is cut off (truncated): {name}; copy or download it again") from None
        raise InputImageError(
            f"{what} is not a readable image: {name} ({error.__class__.__name__}); give a PNG, JPEG or WebP file"
        ) from None


def _to_8bit(array: np.ndarray, mode: str) -> np.ndarray:
    """Samples as uint8: 16-bit by the type's range; 32-bit integers and floats by the first range that holds them
    ([0, 1] for floats, [0, 255], [0, 65535]), else by the data's own minimum and maximum."""
    values = array.astype(np.float64)
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    ranges = [65535.0] if mode.startswith("I;16") else ([1.0] if mode == "F" else []) + [255.0, 65535.0]
    top = next((r for r in ranges if low >= 0 and high <= r), None)
    if top is not None:
        low, scale = 0.0, 255.0 / top
    else:
        scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip((values - low) * scale, 0, 255).round().astype(np.uint8)
