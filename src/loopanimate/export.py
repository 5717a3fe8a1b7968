"""Video files in and out: GIF, MP4 (H.264), WebP and PNG-frame folders, written so that a loop never stutters.

A closed loop, whose last frame is meant to equal its first (every LoopAnimate output), is written
without that last frame: a player that loops goes from the second-to-last frame straight to frame 0.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image

from loopanimate.atomic import atomic_dir, atomic_file
from loopanimate.errors import OutputPathError, VideoReadError

FILE_FORMATS = (".gif", ".mp4", ".webp")
FRAME_FILE = re.compile(r"frame_\d{4,}\.png")
Frames = np.ndarray | Sequence[PIL.Image.Image]


def video_format(path: str | os.PathLike) -> str:
    """'gif', 'mp4', 'webp', or 'png' for a folder of PNG frames (a path with no extension)."""
    suffix = Path(path).suffix.lower()
    if suffix in FILE_FORMATS:
        return suffix[1:]
    if suffix == "":
        return "png"
    raise OutputPathError(
        f"unsupported output extension {suffix!r} in {path}: use .gif, .mp4, .webp, or a folder name for PNG frames"
    )


def is_frames_folder(path: Path) -> bool:
    """A folder holding nothing but our `frame_NNNN.png` files (or nothing): the only folder an output may replace."""
    return path.is_dir() and all(FRAME_FILE.fullmatch(entry.name) for entry in path.iterdir())


def check_output_path(path: str | os.PathLike) -> str:
    """Fail fast, before any work, if `path` cannot be written or would replace what we did not write; return its
    format."""
    fmt = video_format(path)
    path = Path(path)
    if path.name in ("", "..") or path.absolute() == Path.cwd():
        raise OutputPathError(f"output {str(path)!r} is a folder in use: name a new file or folder, e.g. -o loop.mp4")
    if fmt == "png" and path.exists() and not is_frames_folder(path):
        raise OutputPathError(
            f"output {path} exists and is not a folder of our frame_NNNN.png files: nothing was replaced; choose a "
            "new name (a frames folder is replaced only when it holds nothing else)"
        )
    if fmt != "png" and path.is_dir():
        raise OutputPathError(f"output {path} is a folder: give a file name such as {path / 'loop'}.{fmt}")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise OutputPathError(f"output folder does not exist: {parent} (create it first, or choose another -o)")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise OutputPathError(f"cannot write in {parent} ({error.strerror}): choose a writable output folder") from None
    return fmt


def check_file_output(path: str | os.PathLike, suffixes: tuple[str, ...], what: str) -> Path:
    """Fail fast if `path` is not a writable file name with one of `suffixes` (a picture, a report) for `what`."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{what}: give a file name ending in {' or '.join(suffixes)}, not {path.name or path}")
    if path.is_dir():
        raise OutputPathError(f"output {path} is a folder: give a file name")
    if not path.absolute().parent.is_dir():
        raise OutputPathError(f"output folder does not exist: {path.absolute().parent} (create it first)")
    return path


def to_uint8(frames: Frames) -> np.ndarray:
    """Frames as a (F, H, W, 3) uint8 array, from PIL images or arrays in [0, 1] (float) or [0, 255] (uint8)."""
    if not isinstance(frames, np.ndarray):
        frames = np.stack([np.asarray(frame.convert("RGB")) for frame in frames])
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3), got {frames.shape}")
    return frames


def write_video(frames: Frames, path: str | os.PathLike, fps: float = 8.0, closed_loop: bool = True) -> int:
    """Write `frames` to `path` (format from the extension), replacing any old file only once complete.

    Returns the number of frames written: one fewer than given for a closed loop.
    """
    fmt = check_output_path(path)
    frames = to_uint8(frames)
    if closed_loop:
        frames = frames[:-1]  # the last frame repeats frame 0: a looping player must not show it twice
    if len(frames) < 1:
        raise ValueError("no frames to write")
    if fmt == "png":
        with atomic_dir(path) as folder:
            for index, frame in enumerate(frames):
                PIL.Image.fromarray(frame).save(folder / f"frame_{index:04d}.png")
        return len(frames)
    with atomic_file(path) as tmp:
        {"gif": _write_gif, "webp": _write_webp, "mp4": _write_mp4}[fmt](frames, tmp, fps)
    return len(frames)


def shared_palette(frames: np.ndarray, samples: int = 4) -> PIL.Image.Image:
    """One 256-colour palette for the whole loop, from a few frames side by side: per-frame palettes make the still
    background change colour from frame to frame, which costs time, bytes and shows as flicker."""
    picks = frames[np.linspace(0, len(frames) - 1, min(samples, len(frames))).round().astype(int)]
    # Every other row and column: the same colours, a quarter of median cut's work (its error grew 2.41 -> 2.43).
    strip = PIL.Image.fromarray(np.concatenate(list(picks[:, ::2, ::2]), axis=1))
    return strip.quantize(colors=256, method=PIL.Image.Quantize.MEDIANCUT, dither=PIL.Image.Dither.NONE)


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    palette = shared_palette(frames)
    # Without dithering, a pixel that does not change maps to the same index in every frame, so Pillow stores only
    # the rectangle that changed since the previous frame.
    images = [PIL.Image.fromarray(frame).quantize(palette=palette, dither=PIL.Image.Dither.NONE) for frame in frames]
    duration = round(1000.0 / fps)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)


def _write_webp(frames: np.ndarray, path: Path, fps: float) -> None:
    images = [PIL.Image.fromarray(frame) for frame in frames]
    duration = round(1000.0 / fps)
    images[0].save(path, format="WEBP", save_all=True, append_images=images[1:], duration=duration, loop=0, quality=90)


def _write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    import imageio_ffmpeg

    # yuv420p (what every player reads) needs even sides: repeat the last row or column rather than rescale.
    height, width = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    writer = imageio_ffmpeg.write_frames(
        str(path),
        frames.shape[2:0:-1],
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=8,
        macro_block_size=1,
        output_params=["-preset", "veryfast"],  # 3x faster than the default `medium` here, and no larger
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a GIF, MP4, WebP or PNG-frame folder: (F, H, W, 3) uint8 frames and {'fps', 'loop'} (loop: GIF/WebP)."""
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"video not found: {path} (check the path)")
    try:
        if path.is_dir():
            files = sorted(path.glob("*.png"))
            if not files:
                raise VideoReadError(f"no PNG frames in folder {path}: give a folder of frame_NNNN.png files")
            return np.stack([np.asarray(PIL.Image.open(f).convert("RGB")) for f in files]), {"fps": None, "loop": None}
        if path.suffix.lower() in (".gif", ".webp"):
            return _read_animated_image(path)
        return _read_av(path)
    except VideoReadError:
        raise
    except Exception as error:  # any decoder failure means the same thing to the caller
        raise VideoReadError(
            f"cannot decode video {path} ({error.__class__.__name__}): the file is corrupt or not a video"
        ) from None


def _read_animated_image(path: Path) -> tuple[np.ndarray, dict]:
    with PIL.Image.open(path) as image:
        frames, duration = [], 0
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
            duration = duration or image.info.get("duration", 0)  # WebP sets it only once a frame is decoded
        loop = image.info.get("loop")
    return np.stack(frames), {"fps": 1000.0 / duration if duration else None, "loop": loop}


def _read_av(path: Path) -> tuple[np.ndarray, dict]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        fps = float(stream.average_rate) if stream.average_rate else None
    if not frames:
        raise VideoReadError(f"no frames in video {path}: the file is empty or not a video")
    return np.stack(frames), {"fps": fps, "loop": None}
