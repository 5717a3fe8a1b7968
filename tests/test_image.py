"""Input pictures: every Pillow mode becomes RGB; non-images are refused with a clear error."""

import numpy as np
import PIL.Image
import pytest

from loopanimate.errors import InputImageError
from loopanimate.reader import read_picture


@pytest.mark.parametrize("mode", ["L", "P", "RGB", "I;16", "CMYK"])
def test_modes_become_rgb(tmp_path, mode):
    source = PIL.Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).convert(mode)
    path = tmp_path / ("in.tif" if mode == "I;16" else "in.png" if mode != "CMYK" else "in.jpg")
    source.save(path)
    loaded = read_picture(path)
    assert loaded.mode == "RGB" and loaded.size == (8, 8)


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = [255, 0, 0, 255]  # opaque red top, fully transparent bottom
    PIL.Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    pixels = np.asarray(read_picture(tmp_path / "a.png"))
    assert pixels[0, 0].tolist() == [255, 0, 0]
    assert pixels[3, 3].tolist() == [255, 255, 255]


def test_palette_transparency_becomes_white(tmp_path):
    image = PIL.Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    image.info["transparency"] = 1
    image.save(tmp_path / "p.png", transparency=1)
    assert np.asarray(read_picture(tmp_path / "p.png"))[0, 0].tolist() == [255, 255, 255]


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(InputImageError, match="not a readable image"):
        read_picture(tmp_path / "notes.png")


def test_missing_image(tmp_path):
    with pytest.raises(InputImageError, match="input image not found"):
        read_picture(tmp_path / "nope.png")
