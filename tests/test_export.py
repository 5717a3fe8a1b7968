"""Video files: round trips, the dropped seam frame, loop flags, atomic replacement, bad paths."""

import os
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from loopanimate import export
from loopanimate.errors import OutputPathError, VideoReadError
from loopanimate.export import check_output_path, read_video, write_video


def closed_loop(frames: int = 7, size: int = 32) -> np.ndarray:
    """A bright square travelling right and back to its start: last frame equals the first."""
    video = np.zeros((frames, size, size, 3), dtype=np.uint8)
    for index in range(frames):
        x = round(12 * np.sin(np.pi * index / (frames - 1)))
        video[index, 8:20, 4 + x : 16 + x] = [250, 200, 40]
    return video


@pytest.mark.parametrize("name", ["loop.gif", "loop.webp", "loop.mp4", "loop_frames"])
def test_round_trip_drops_only_the_repeated_seam_frame(tmp_path, name):
    video = closed_loop()
    assert np.array_equal(video[0], video[-1])
    assert write_video(video, tmp_path / name, fps=10).frames == len(video) - 1
    frames, _ = read_video(tmp_path / name)
    assert len(frames) == len(video) - 1
    assert frames.shape[1:] == video.shape[1:]
    error = np.abs(frames.astype(int) - video[:-1].astype(int)).mean()
    assert error < 6  # lossy codecs stay close to the source
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 2 * error  # no duplicate at the seam


@pytest.mark.parametrize("name", ["loop.gif", "loop.webp"])
def test_animated_images_loop_forever_at_the_given_rate(tmp_path, name):
    write_video(closed_loop(), tmp_path / name, fps=10)
    _, info = read_video(tmp_path / name)
    assert info["loop"] == 0
    assert info["fps"] == pytest.approx(10.0)


def test_mp4_is_h264_yuv420p(tmp_path):
    import av

    write_video(closed_loop(), tmp_path / "loop.mp4", fps=12)
    with av.open(str(tmp_path / "loop.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(12.0)


def test_open_clip_keeps_every_frame(tmp_path):
    assert write_video(closed_loop(), tmp_path / "all", closed_loop=False).frames == 7
    assert len(read_video(tmp_path / "all")[0]) == 7


def test_float_frames_in_unit_range_are_accepted(tmp_path):
    write_video(closed_loop().astype(np.float32) / 255.0, tmp_path / "f", closed_loop=False)
    assert np.array_equal(read_video(tmp_path / "f")[0], closed_loop())


def test_unsupported_extension_is_refused(tmp_path):
    with pytest.raises(OutputPathError, match=r"unsupported output extension '\.avi'"):
        write_video(closed_loop(), tmp_path / "loop.avi")
    assert not list(tmp_path.iterdir())


def test_missing_output_folder_is_refused(tmp_path):
    with pytest.raises(OutputPathError, match="output folder does not exist"):
        check_output_path(tmp_path / "nope" / "loop.gif")


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a folder no user may write to")
def test_unwritable_output_folder_is_refused():
    target = Path("/sys") if os.geteuid() == 0 else Path("/")
    with pytest.raises(OutputPathError, match="cannot write in"):
        check_output_path(target / "loop.gif")


@pytest.mark.parametrize("name", ["loop.gif", "loop_frames"])
def test_old_output_survives_a_failed_write(tmp_path, monkeypatch, name):
    write_video(closed_loop(), tmp_path / name)
    before = read_video(tmp_path / name)[0]

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_animated", broken)
    monkeypatch.setattr(export.PIL.Image.Image, "save", broken)
    with pytest.raises(RuntimeError):
        write_video(closed_loop()[::-1], tmp_path / name)
    assert np.array_equal(read_video(tmp_path / name)[0], before)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left behind


def test_existing_output_is_replaced_by_the_new_video(tmp_path):
    write_video(closed_loop(), tmp_path / "v")
    write_video(closed_loop(4), tmp_path / "v")
    assert len(read_video(tmp_path / "v")[0]) == 3


@pytest.mark.parametrize("name", ["loop.gif", "loop.webp", "loop.png", "loop.mp4", "loop.webm"])
def test_an_earlier_loop_in_each_format_is_replaced(tmp_path, name):
    write_video(closed_loop(), tmp_path / name)
    write_video(closed_loop(5), tmp_path / name)
    assert len(read_video(tmp_path / name)[0]) == 4  # the new loop's, its repeated seam frame dropped


@pytest.mark.parametrize("name", ["still.gif", "still.webp", "still.png", "still.mp4"])
def test_a_still_loop_is_written_in_each_format(tmp_path, name):
    """Pillow stores a WebP loop of one repeated picture as a still picture without a duration: still complete."""
    frames = np.repeat(closed_loop()[:1], 5, axis=0)
    write_video(frames, tmp_path / name, closed_loop=True)
    assert np.abs(read_video(tmp_path / name)[0][0].astype(int) - frames[0]).mean() < 8


def test_corrupt_video_gets_a_read_error(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoReadError, match="corrupt or not a video"):
        read_video(tmp_path / "bad.mp4")


def test_missing_video_gets_a_read_error(tmp_path):
    with pytest.raises(VideoReadError, match="video not found"):
        read_video(tmp_path / "gone.gif")


def test_odd_sized_mp4_keeps_its_picture(tmp_path):
    video = closed_loop(5, size=32)[:, :31, :29]  # odd height and width
    write_video(video, tmp_path / "odd.mp4", fps=8)
    frames, _ = read_video(tmp_path / "odd.mp4")
    assert frames.shape == (4, 32, 30, 3)  # one repeated row and column, no rescaling
    assert np.abs(frames[:, :31, :29].astype(int) - video[:-1].astype(int)).mean() < 6


def test_a_gif_keeps_a_still_background_identical_in_every_frame(tmp_path):
    """One palette for the whole loop: per-frame palettes recolour the still background from frame to frame."""
    y, x = np.mgrid[0:64, 0:96]
    background = np.stack([x * 2.6, y * 3.9, 255 - x * 2.6], axis=-1).astype(np.uint8)  # a smooth colour gradient
    video = np.repeat(background[None], 9, axis=0)
    for index in range(9):
        video[index, 20:40, 10 + 6 * index : 30 + 6 * index] = [250, 40 + 20 * index, 40]  # a square that changes
    write_video(video, tmp_path / "v.gif", closed_loop=False)
    frames, _ = read_video(tmp_path / "v.gif")
    still = frames[:, 45:, :]  # rows the square never reaches
    assert all(np.array_equal(frame, still[0]) for frame in still)
    assert np.abs(frames.astype(int) - video.astype(int)).mean() < 6  # one palette still fits every frame


def test_an_mp4_starts_with_its_index(tmp_path):
    """+faststart: the `moov` index comes before the media, so a browser plays a download while it arrives."""
    write_video(closed_loop(), tmp_path / "loop.mp4")
    data = (tmp_path / "loop.mp4").read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


@pytest.mark.parametrize("name", ["object.png", "object.webp"])
def test_a_transparent_loop_keeps_the_mask_as_alpha(tmp_path, name):
    alpha = np.zeros((32, 32), np.float32)
    alpha[8:24, 8:24] = 1.0
    write_video(closed_loop(), tmp_path / name, alpha=alpha)
    with PIL.Image.open(tmp_path / name) as image:
        assert getattr(image, "n_frames", 1) > 1
        image.seek(1)
        opacity = np.asarray(image.convert("RGBA"))[..., 3]
    assert opacity[16, 16] == 255 and opacity[0, 0] == 0


def test_a_transparent_webm_carries_an_alpha_channel(tmp_path):
    import av

    write_video(closed_loop(), tmp_path / "object.webm", alpha=np.ones((32, 32), np.float32))
    with av.open(str(tmp_path / "object.webm")) as container:
        assert container.streams.video[0].metadata.get("alpha_mode") == "1"
    assert len(read_video(tmp_path / "object.webm")[0]) == len(closed_loop()) - 1


def test_a_transparent_gif_is_refused_before_work(tmp_path):
    with pytest.raises(OutputPathError, match=r"transparent loop needs \.webm, \.png or \.webp"):
        write_video(closed_loop(), tmp_path / "object.gif", alpha=np.ones((32, 32), np.float32))
    assert not (tmp_path / "object.gif").exists()


@pytest.mark.parametrize(("size", "noted"), [(31, True), (32, False)])
def test_an_mp4_of_odd_size_says_its_padded_size(tmp_path, size, noted):
    written = write_video(closed_loop(size=size), tmp_path / "v.mp4")
    assert len(read_video(tmp_path / "v.mp4")[0][0]) == 32  # yuv420p: the odd side padded by one row
    assert any("this one is 32x32" in note for note in written.notes) == noted
