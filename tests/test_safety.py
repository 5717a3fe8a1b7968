"""Safe off the happy path, by class: the one writer (nothing lost on a full disk, a broken encoder, a signal), rows
kept inside the output folder, the one reader (orientation, bit depth, alpha), exact GIF timing, the port in use."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from loopanimate import atomic, export
from loopanimate.batch import read_rows
from loopanimate.cli import main
from loopanimate.errors import OutputPathError
from loopanimate.export import read_video, write_video
from loopanimate.reader import read_mask, read_picture


def loop(frames: int = 6) -> np.ndarray:
    video = np.zeros((frames, 16, 16, 3), np.uint8)
    for index in range(frames):
        video[index, :, index * 2 : index * 2 + 4] = 200
    video[-1] = video[0]
    return video


def leftovers(folder: Path) -> list[str]:
    return [path.name for path in folder.rglob(".*") if ".tmp" in path.name or ".old-" in path.name]


# The one writer ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["loop.mp4", "loop.gif", "frames"])
def test_full_disk_is_one_line_and_keeps_the_old_loop(tmp_path, monkeypatch, name):
    write_video(loop(), tmp_path / name)
    before = read_video(tmp_path / name)[0]

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export, "_write_ffmpeg", disk_full)
    monkeypatch.setattr(export, "_write_animated", disk_full)
    monkeypatch.setattr(PIL.Image.Image, "save", disk_full)
    with pytest.raises(OutputPathError, match="No space left on device") as error:
        write_video(loop()[::-1], tmp_path / name)
    assert "\n" not in str(error.value)
    np.testing.assert_array_equal(read_video(tmp_path / name)[0], before)
    assert leftovers(tmp_path) == []


def test_a_full_disk_while_saving_a_model_is_one_line(tmp_path, monkeypatch, capsys):
    import safetensors.torch

    def disk_full(*args, **kwargs):  # safetensors' own error, as a real full disk raises it
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    assert main(["init-model", "--tiny", str(tmp_path / "model")]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "No space left on device" in message and "nothing was replaced" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_symlinked_output_is_followed(tmp_path, kind):
    target = tmp_path / ("real" if kind == "folder" else "real.gif")
    write_video(loop(), target)
    (tmp_path / "link").symlink_to(target.name)
    link = tmp_path / ("link" if kind == "folder" else "link.gif")
    if kind == "file":
        (tmp_path / "link").rename(link)
    write_video(loop(4), link)
    assert link.is_symlink() and len(read_video(target)[0]) == 3  # the target was replaced, the link points there
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["o" * 251 + ".gif", "d" * 255])
def test_an_output_name_as_long_as_the_file_system_takes_works(tmp_path, name):
    write_video(loop(), tmp_path / name)  # its temporary's name is cut short; the output keeps its own
    assert len(read_video(tmp_path / name)[0]) == 5 and leftovers(tmp_path) == []


def test_a_mask_we_wrote_is_replaced_by_the_next(tmp_path, capsys, image):
    image.save(tmp_path / "in.png")
    command = ["animate", str(tmp_path / "in.png"), "--frames", "3", "-o", str(tmp_path / "o.gif")]
    for _ in range(2):  # the second run replaces the first run's mask, which carries our mark
        assert main([*command, "--save-mask", str(tmp_path / "mask.png")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", ["loop.mp4", "loop.gif", "loop.webp"])
def test_a_truncated_encoding_never_replaces_a_good_loop(tmp_path, monkeypatch, name):
    write_video(loop(), tmp_path / name)
    good = (tmp_path / name).read_bytes()
    encoders = {"mp4": export._write_ffmpeg, "gif": export._write_animated, "webp": export._write_animated}
    encoder = encoders[name.split(".")[1]]

    def truncating(*args, **kwargs):
        encoder(*args, **kwargs)
        path = next(arg for arg in args if isinstance(arg, Path))
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # the disk filled up half-way

    monkeypatch.setattr(export, "_write_ffmpeg" if name.endswith("mp4") else "_write_animated", truncating)
    with pytest.raises(OutputPathError, match="nothing was replaced"):
        write_video(loop()[::-1], tmp_path / name)
    assert (tmp_path / name).read_bytes() == good
    assert leftovers(tmp_path) == []


def test_a_folder_swap_that_fails_puts_the_old_folder_back(tmp_path, monkeypatch):
    write_video(loop(), tmp_path / "frames")
    before = sorted(p.name for p in (tmp_path / "frames").iterdir())
    real_replace = os.replace

    def replace(source, target):
        if Path(source).name.endswith(".tmp"):  # moving the new folder into place fails
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OutputPathError, match="Input/output error"):
        write_video(loop(4), tmp_path / "frames")
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == before
    assert leftovers(tmp_path) == []


def test_read_only_folder_is_one_line_before_work(tmp_path, monkeypatch, capsys):
    write_video(loop(), tmp_path / "clip.gif")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.tempfile, "TemporaryFile", read_only)
    assert main(["contact-sheet", str(tmp_path / "clip.gif"), "-o", str(tmp_path / "sheet.png")]) == 2
    assert "Read-only file system" in capsys.readouterr().err
    assert not (tmp_path / "sheet.png").exists()


def test_sigterm_leaves_no_temporary_file(tmp_path):
    PIL.Image.new("RGB", (256, 256), (30, 90, 200)).save(tmp_path / "in.png")
    command = [sys.executable, "-m", "loopanimate", "animate", "in.png", "-o", "frames", "--frames", "400"]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(".tmp" in p.name for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.005)  # wait until the frames are being written
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert leftovers(tmp_path) == [] and not (tmp_path / "frames").exists()


# Rows stay inside the output folder -------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["../escaped", "/tmp/loopanimate-escaped", "link/escaped"])
def test_a_row_cannot_write_outside_the_output_folder(tmp_path, output):
    PIL.Image.new("RGB", (32, 32), (10, 120, 200)).save(tmp_path / "in.png")
    (tmp_path / "rows.jsonl").write_text(json.dumps({"image": "in.png", "output": output}) + "\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path / "elsewhere")
    before = set(tmp_path.parent.iterdir()) | set(Path("/tmp").iterdir())
    assert main(["animate-batch", str(tmp_path / "rows.jsonl"), "-o", str(tmp_path / "out"), "--frames", "3"]) == 1
    record = json.loads((tmp_path / "out" / "run.jsonl").read_text())
    assert record["status"] == "failed" and "is outside the output folder" in record["error"]
    assert set(tmp_path.parent.iterdir()) | set(Path("/tmp").iterdir()) == before
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_broken_output_is_made_again_not_skipped(tmp_path):
    PIL.Image.new("RGB", (32, 32), (10, 120, 200)).save(tmp_path / "in.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "in.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom truncated")
    assert main(["animate-batch", str(tmp_path), "-o", str(tmp_path / "out"), "--frames", "3"]) == 0
    assert json.loads((tmp_path / "out" / "run.jsonl").read_text())["status"] == "done"
    assert len(read_video(tmp_path / "out" / "in.mp4")[0]) == 2


def test_a_picture_folder_given_relative_to_the_working_folder(tmp_path, monkeypatch):
    """The README's `animate-batch photos/ -o loops/`, run from the folder that holds photos/."""
    (tmp_path / "photos").mkdir()
    PIL.Image.new("RGB", (32, 32), (10, 120, 200)).save(tmp_path / "photos" / "beach.png")
    monkeypatch.chdir(tmp_path)
    rows = read_rows("photos/", "loops/", "mp4")
    assert [row.image for row in rows] == [Path("photos/beach.png")] and rows[0].image.is_file()


# The one reader ---------------------------------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path):
    wide = PIL.Image.new("RGB", (40, 20), (200, 30, 30))
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show upright: a phone held upright
    wide.save(tmp_path / "phone.jpg", exif=exif)
    assert read_picture(tmp_path / "phone.jpg").size == (20, 40)


def test_sixteen_bit_grey_keeps_its_tones(tmp_path):
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    PIL.Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    pixels = np.asarray(read_picture(tmp_path / "ramp16.png"))[..., 0].astype(float)
    np.testing.assert_allclose(pixels, ramp / 257.0, atol=1.0)


def test_a_mask_alpha_is_multiplied_in(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, but only the top half is opaque
    rgba[:4, :, 3] = 255
    PIL.Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")
    mask = np.asarray(read_mask(tmp_path / "mask.png"))
    assert (mask[:4] == 255).all() and (mask[4:] == 0).all()


# Exact GIF timing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "fps"), [("gif", 8.0), ("gif", 30.0), ("webp", 30.0), ("gif", 50.0)])
def test_animated_files_keep_the_rate(tmp_path, fmt, fps):
    write_video(np.random.default_rng(0).integers(0, 255, (25, 8, 8, 3), np.uint8), tmp_path / f"v.{fmt}", fps=fps)
    assert read_video(tmp_path / f"v.{fmt}")[1]["fps"] == pytest.approx(fps, rel=0.01)


def test_a_gif_above_fifty_fps_says_how_it_plays(tmp_path):
    written = write_video(loop(), tmp_path / "fast.gif", fps=120)
    assert written.notes and "plays at 50 instead of 120" in written.notes[0]
    assert read_video(tmp_path / "fast.gif")[1]["fps"] == pytest.approx(50.0)


# Serving ------------------------------------------------------------------------------------------------------------


def test_a_port_in_use_is_one_line(capsys):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"cannot listen on 127.0.0.1:{port}" in error[0]


def test_a_truncated_mp4_from_an_earlier_run_is_made_again(tmp_path):
    """A file cut short keeps its index (MP4 +faststart) and a few frames: it must decode whole to count as done."""
    import shutil

    shutil.copy(Path(__file__).resolve().parent.parent / "examples" / "coffee.png", tmp_path / "coffee.png")
    out = tmp_path / "out"
    assert main(["animate-batch", str(tmp_path), "-o", str(out), "--frames", "9"]) == 0
    whole = (out / "coffee.mp4").read_bytes()
    (out / "coffee.mp4").write_bytes(whole[: len(whole) // 3])
    assert main(["animate-batch", str(tmp_path), "-o", str(out), "--frames", "9"]) == 0
    assert json.loads((out / "run.jsonl").read_text())["status"] == "done"
    assert len(read_video(out / "coffee.mp4")[0]) == 8


def test_a_manifest_output_with_the_format_extension_is_not_doubled(tmp_path):
    PIL.Image.new("RGB", (32, 32), (10, 120, 200)).save(tmp_path / "in.png")
    (tmp_path / "rows.jsonl").write_text('{"image": "in.png", "output": "beach.mp4"}\n')
    rows = read_rows(tmp_path / "rows.jsonl", tmp_path / "out", "mp4")
    assert rows[0].output.name == "beach.mp4" and rows[0].error is None
