"""Video files in and out: GIF, MP4 (H.264), WebP and PNG-frame folders, written so that a loop never stutters.

A closed loop, whose last frame is meant to equal its first (every LoopAnimate output), is written
without that last frame: a player that loops goes from the second-to-last frame straight to frame 0.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
from PIL.PngImagePlugin import PngInfo

from loopanimate.atomic import atomic_dir, atomic_file, check_destination, check_owned_folder
from loopanimate.errors import OutputPathError, VideoReadError
from loopanimate.frames import prefetched

FILE_FORMATS = (".gif", ".mp4", ".webp", ".webm", ".png")  # .png: an animated PNG
ALPHA_FORMATS = ("webm", "png", "webp")  # formats that keep a transparent loop's alpha
FRAME_FILE = re.compile(r"frame_\d{4,}\.png")
OUR_MARK = ("Software", "loopanimate")  # the PNG text chunk that marks a still picture as ours to replace
GIF_MAX_FPS = 50.0  # a GIF frame lasts whole hundredths of a second, at least 2
Frames = np.ndarray | Sequence[np.ndarray] | Sequence[PIL.Image.Image]


def video_format(path: str | os.PathLike) -> str:
    """'gif', 'mp4', 'webp', 'webm', 'png' (an animated PNG), or 'frames' for a folder of PNG frames (a path with
    no extension)."""
    suffix = Path(path).suffix.lower()
    if suffix in FILE_FORMATS:
        return suffix[1:]
    if suffix == "":
        return "frames"
    raise OutputPathError(
        f"unsupported output extension {suffix!r} in {path}: use .mp4, .gif, .webp, .webm, .png (animated), or a "
        "folder name for PNG frames"
    )


def is_frame_file(path: Path) -> bool:
    """One of our `frame_NNNN.png` files: a regular file of that name (a folder or link of that name is not ours)."""
    return FRAME_FILE.fullmatch(path.name) is not None and path.is_file() and not path.is_symlink()


def check_output_path(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()) -> str:
    """Fail fast, before any work, if `path` cannot be written, is one of `inputs`, or would replace what we did not
    write; return its format."""
    fmt = video_format(path)
    path = check_destination(path, inputs)
    if fmt == "frames":
        check_owned_folder(path, is_frame_file, "folder of our frame_NNNN.png files")
    elif path.is_dir():
        raise OutputPathError(f"output {path} is a folder: give a file name such as {path / 'loop'}.{fmt}")
    elif path.exists() and not may_replace(path, fmt):
        raise OutputPathError(
            f"output {path} exists and is not a {fmt.upper()} video or animation (a still picture, or another kind "
            "of file): nothing was replaced; choose a new name, or remove it first"
        )
    return fmt


# The first bytes of each format's file (MP4's are at offset 4), to know a broken file of that kind.
SIGNATURES = {
    "gif": (0, b"GIF8"),
    "png": (0, b"\x89PNG"),
    "webp": (8, b"WEBP"),
    "mp4": (4, b"ftyp"),
    "webm": (0, b"\x1aE\xdf\xa3"),
}


def may_replace(path: Path, fmt: str) -> bool:
    """Whether an output in `fmt` may replace the file at `path`: a video or an animation in that format (an earlier
    loop), or a broken file of that kind (an interrupted copy); never a still picture or another kind of file that
    happens to have the name."""
    try:
        if fmt in ("mp4", "webm"):
            import av

            with av.open(str(path)) as container:
                return bool(container.streams.video)
        with PIL.Image.open(path) as image:
            # A GIF loop of one picture repeated is stored as one frame, with the loop count a still GIF lacks.
            looping = image.format == "GIF" and "loop" in image.info
            return image.format == fmt.upper() and (getattr(image, "is_animated", False) or looping)
    except Exception:  # it does not decode: replace it if it is a broken file of this kind, not another file
        offset, signature = SIGNATURES[fmt]
        try:
            with open(path, "rb") as file:
                return file.read(offset + len(signature))[offset:] == signature
        except OSError:  # unreadable: not ours to replace
            return False


def our_png_info() -> PngInfo:
    """The text chunk on every still PNG we write (a mask, a contact sheet): a later run may replace such a file,
    never a user's picture of the same name."""
    info = PngInfo()
    info.add_text(*OUR_MARK)
    return info


def is_our_png(path: Path) -> bool:
    """A PNG we wrote (it carries OUR_MARK), or a broken PNG (an interrupted copy of one)."""
    try:
        with PIL.Image.open(path) as image:
            return image.format == "PNG" and image.info.get(OUR_MARK[0]) == OUR_MARK[1]
    except Exception:  # it does not decode: ours to replace only if it is a broken PNG
        offset, signature = SIGNATURES["png"]
        try:
            with open(path, "rb") as file:
                return file.read(offset + len(signature))[offset:] == signature
        except OSError:
            return False


def check_file_output(
    path: str | os.PathLike, suffixes: tuple[str, ...], what: str, inputs: Iterable[str | os.PathLike | None] = ()
) -> Path:
    """Fail fast if `path` is not a writable file name with one of `suffixes` (a picture, a report) for `what`, or
    would replace a picture we did not write."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{what}: give a file name ending in {' or '.join(suffixes)}, not {path.name or path}")
    if path.is_dir():
        raise OutputPathError(f"output {path} is a folder: give a file name")
    path = check_destination(path, inputs, what)
    if path.exists() and not is_our_png(path):
        raise OutputPathError(
            f"{what} {path} exists and is not a picture loopanimate wrote: nothing was replaced; choose a new name"
        )
    return path


def frame_uint8(frame) -> np.ndarray:
    """One frame as (H, W, 3) uint8, from a PIL image or an array in [0, 1] (float) or [0, 255] (uint8)."""
    frame = np.asarray(frame.convert("RGB")) if isinstance(frame, PIL.Image.Image) else np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"a frame must be (H, W, 3), got {frame.shape}")
    return frame


def to_uint8(frames: Frames) -> np.ndarray:
    """Frames as one (F, H, W, 3) uint8 array (see `frame_uint8`)."""
    return np.stack([frame_uint8(frame) for frame in prefetched(frames)])


def write_video(
    frames: Frames,
    path: str | os.PathLike,
    fps: float = 8.0,
    closed_loop: bool = True,
    inputs: Iterable[str | os.PathLike | None] = (),
    alpha: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Written:
    """Write `frames` to `path` (format from the extension), replacing any old file only once complete and verified
    (it decodes to the frames written). A closed loop is written without its last frame, which repeats frame 0.

    Frames stream from a lazy sequence to MP4, WebM, animated PNG and frame folders (GIF and WebP are assembled by
    Pillow, which holds them). `alpha` (H, W) in [0, 1] makes a transparent loop: WebM, PNG or WebP only.
    `progress(done, total)` is told each frame made and handed to the encoder."""
    fmt = check_output_path(path, inputs)
    if alpha is not None and fmt not in ALPHA_FORMATS:
        raise OutputPathError(f"a transparent loop needs .webm, .png or .webp, not .{fmt}: change the extension")
    if closed_loop:
        frames = frames[:-1]  # a looping player must not show frame 0 twice
    if len(frames) < 1:
        raise ValueError("no frames to write")
    opacity = None if alpha is None else np.clip(np.asarray(alpha, np.float32) * 255.0, 0, 255).round()
    stream = _stream(frames, opacity, progress)
    notes = timing_notes(fmt, fps) + even_size_notes(fmt, frame_uint8(frames[0]).shape[:2])
    delays = video_delays(fmt, len(frames), fps)
    verify = functools.partial(check_written, fmt=fmt, frames=len(frames), total_ms=sum(delays) if delays else None)
    try:
        if fmt == "frames":
            with atomic_dir(path, verify) as folder:
                for index, frame in enumerate(stream):
                    PIL.Image.fromarray(frame).save(folder / f"frame_{index:04d}.png")
        else:
            with atomic_file(path, verify) as tmp:
                if fmt in FFMPEG_FORMATS:
                    _write_ffmpeg(stream, tmp, fmt, fps, transparent=opacity is not None)
                else:
                    _write_animated(frames, stream, tmp, fmt, delays)
    finally:
        stream.close()  # stops the frame workers now, not when the garbage collector finds them (Ctrl-C)
    return Written(len(frames), notes, min(fps, GIF_MAX_FPS) if fmt == "gif" else fps)


def _stream(
    frames: Frames, opacity: np.ndarray | None, progress: Callable[[int, int], None] | None
) -> Iterator[np.ndarray]:
    """Each frame as uint8 (RGBA with `opacity`), made as the encoder asks for it; `progress` once it is taken."""
    for done, frame in enumerate(prefetched(frames), start=1):
        frame = frame_uint8(frame)
        yield frame if opacity is None else np.dstack([frame, opacity.astype(np.uint8)])
        if progress is not None:
            progress(done, len(frames))


@dataclass
class Written:
    """What `write_video` wrote: the frames, one-line notes of what changed on the way (e.g. a GIF's rate), the rate."""

    frames: int
    notes: list[str]
    fps: float  # the rate the file plays at (a GIF's is at most 50)


def frame_delays(count: int, fps: float, unit_ms: int, shortest: int = 1) -> list[int]:
    """Per-frame delays (ms) in multiples of `unit_ms` whose running sum tracks `fps` exactly (e.g. 120, 130, 120,
    130 for 8 fps in a GIF's hundredths), each at least `shortest` units."""
    ends = [round(index * 1000.0 / (fps * unit_ms)) for index in range(count + 1)]
    return [max(shortest, end - start) * unit_ms for start, end in itertools.pairwise(ends)]


def video_delays(fmt: str, count: int, fps: float) -> list[int]:
    """The frame delays a GIF (hundredths, at least 2) or WebP (milliseconds) stores; none for MP4 and PNG."""
    if fmt == "gif":
        return frame_delays(count, min(fps, GIF_MAX_FPS), unit_ms=10, shortest=2)
    return frame_delays(count, fps, unit_ms=1) if fmt == "webp" else []


def even_size_notes(fmt: str, size: tuple[int, int]) -> list[str]:
    """H.264's yuv420p needs even sides: an odd side of an MP4 is padded by repeating its last row or column."""
    height, width = size
    if fmt != "mp4" or (height % 2 == 0 and width % 2 == 0):
        return []
    return [
        f"note: an MP4 needs even sides, so this one is {width + width % 2}x{height + height % 2} (the last row or "
        f"column of the {width}x{height} loop repeated); use .webm, .webp or .png for the exact size"
    ]


def timing_notes(fmt: str, fps: float) -> list[str]:
    """A GIF's frames last whole hundredths of a second, at least 2 (browsers slow shorter ones): above 50 fps the GIF
    plays slower, and the note says by how much."""
    if fmt == "gif" and fps > GIF_MAX_FPS:
        return [
            f"note: a GIF plays at most {GIF_MAX_FPS:g} fps, so this one plays at {GIF_MAX_FPS:g} instead of {fps:g} "
            f"({fps / GIF_MAX_FPS:.2f}x slower); use .mp4 or .webp for the full rate"
        ]
    return []


def probe_video(path: str | os.PathLike, fmt: str, decode: bool = False) -> tuple[int, int | None]:
    """A written video's stored frames and, for GIF/WebP/animated PNG, its total duration in ms (Pillow stores a run
    of equal GIF or WebP frames as one longer frame, so only the duration tells their number). MP4 and WebM frames
    are counted by demuxing, or with `decode` by decoding every one (a file someone else cut short)."""
    path = Path(path)
    if fmt == "frames":
        return sum(1 for entry in path.iterdir() if is_frame_file(entry)), None
    if fmt in ("mp4", "webm"):
        import av

        # Demuxing counts the encoded frames 10x faster than decoding them, enough to check what we just wrote.
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if decode:
                return sum(1 for _ in container.decode(stream)), None
            return sum(1 for packet in container.demux(stream) if packet.size), None
    with PIL.Image.open(path) as image:
        durations = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            image.load()
            durations.append(image.info.get("duration", 0))
    return len(durations), sum(durations)


def check_written(path: Path, fmt: str, frames: int, total_ms: int | None) -> None:
    """Verify a written video before it replaces anything: it decodes, to `frames` frames (or their duration)."""
    try:
        stored, duration = probe_video(path, fmt)
    except Exception as error:  # any decoder failure means the encoder wrote a broken file
        raise OutputPathError(
            f"the encoder wrote an unreadable {fmt.upper()} ({error.__class__.__name__}): nothing was replaced; "
            "check the free space and try again"
        ) from None
    complete = (1 <= stored <= frames and duration == total_ms) if total_ms is not None else stored == frames
    # Pillow writes a WebP loop whose frames are all the same (a still loop) as one still picture, without a duration.
    complete = complete or (fmt == "webp" and stored == 1 and duration == 0)
    if not complete:
        raise OutputPathError(
            f"the encoder wrote an incomplete {fmt.upper()} ({stored} of {frames} frames): nothing was replaced; "
            "check the free space and try again"
        )


def is_complete_video(path: str | os.PathLike) -> bool:
    """Whether `path` exists and decodes (a batch redoes a row whose output does not)."""
    try:
        return Path(path).exists() and probe_video(path, video_format(path), decode=True)[0] > 0
    except Exception:  # a broken or foreign file is not a finished output
        return False


def shared_palette(frames: Frames, samples: int = 4) -> PIL.Image.Image:
    """One 256-colour palette for the whole loop, from a few frames side by side: per-frame palettes make the still
    background change colour from frame to frame, which costs time, bytes and shows as flicker."""
    picks = [frame_uint8(frames[int(i)]) for i in np.linspace(0, len(frames) - 1, min(samples, len(frames))).round()]
    # Every other row and column: the same colours, a quarter of median cut's work (its error grew 2.41 -> 2.43).
    strip = PIL.Image.fromarray(np.concatenate([pick[::2, ::2] for pick in picks], axis=1))
    return strip.quantize(colors=256, method=PIL.Image.Quantize.MEDIANCUT, dither=PIL.Image.Dither.NONE)


def _write_animated(frames: Frames, stream: Iterator[np.ndarray], path: Path, fmt: str, delays: list[int]) -> None:
    """GIF or WebP through Pillow, which gathers the frames before it encodes (GIF: one byte a pixel)."""
    images = (PIL.Image.fromarray(frame) for frame in stream)
    options: dict = {"quality": 90}
    if fmt == "gif":
        palette = shared_palette(frames)
        # Without dithering, a pixel that does not change maps to the same index in every frame, so Pillow stores
        # only the rectangle that changed since the previous frame.
        images = (image.quantize(palette=palette, dither=PIL.Image.Dither.NONE) for image in images)
        options = {}
    first = next(images)
    first.save(path, format=fmt.upper(), save_all=True, append_images=images, duration=delays, loop=0, **options)


# How ffmpeg encodes each format it writes: codec, pixel format (opaque, transparent), extra options.
FFMPEG_FORMATS = {
    # x264's veryfast is 3x faster than the default `medium` here, and no larger; faststart: playable while loading.
    "mp4": ("libx264", ("yuv420p", None), ["-preset", "veryfast", "-movflags", "+faststart"]),
    "webm": (
        "libvpx-vp9",
        ("yuv420p", "yuva420p"),
        ["-row-mt", "1", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "32"],
    ),  # constant quality
    "png": ("apng", ("rgb24", "rgba"), ["-plays", "0", "-f", "apng"]),  # by name: .png alone means one picture
}


def _write_ffmpeg(stream: Iterator[np.ndarray], path: Path, fmt: str, fps: float, transparent: bool) -> None:
    """Encode frames one at a time through imageio-ffmpeg's ffmpeg; its exit status is checked when it closes."""
    import imageio_ffmpeg

    codec, (opaque, with_alpha), options = FFMPEG_FORMATS[fmt]
    first = next(stream)
    height, width = first.shape[:2]
    even = fmt == "mp4"  # yuv420p in H.264 needs even sides: repeat the last row or column rather than rescale
    pad = ((0, height % 2 if even else 0), (0, width % 2 if even else 0), (0, 0))
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width + pad[1][1], height + pad[0][1]),
        pix_fmt_in="rgba" if transparent else "rgb24",
        fps=fps,
        codec=codec,
        pix_fmt_out=with_alpha if transparent else opaque,
        quality=8 if fmt == "mp4" else None,
        macro_block_size=1,
        output_params=options,
    )
    writer.send(None)
    try:
        for frame in itertools.chain([first], stream):
            writer.send(np.ascontiguousarray(np.pad(frame, pad, mode="edge") if even else frame))
    finally:  # on the way out too: else ffmpeg ends later, after the temporary is removed, and writes it again
        writer.close()


def read_video(path: str | os.PathLike, max_side: int | None = None) -> tuple[np.ndarray, dict]:
    """Read a GIF, MP4, WebM, WebP, animated PNG or PNG-frame folder: (F, H, W, 3) uint8 frames and {'fps', 'loop'}
    (loop: GIF/WebP). `max_side`: MP4 and WebM frames are shrunk as they are decoded (a 4K loop in little memory)."""
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"video not found: {path} (check the path)")
    try:
        if path.is_dir():
            files = sorted(path.glob("*.png"))
            if not files:
                raise VideoReadError(f"no PNG frames in folder {path}: give a folder of frame_NNNN.png files")
            return np.stack([np.asarray(PIL.Image.open(f).convert("RGB")) for f in files]), {"fps": None, "loop": None}
        if path.suffix.lower() in (".gif", ".webp", ".png"):
            return _read_animated_image(path)
        return _read_av(path, max_side)
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
            duration += image.info.get("duration", 0)  # WebP sets it only once a frame is decoded
        loop = image.info.get("loop")
    # Delays alternate (120, 130 ms for 8 fps in a GIF): the rate is the mean over the loop.
    return np.stack(frames), {"fps": 1000.0 * len(frames) / duration if duration else None, "loop": loop}


def _read_av(path: Path, max_side: int | None = None) -> tuple[np.ndarray, dict]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        scale = min(1.0, max_side / max(stream.width, stream.height)) if max_side else 1.0
        size = {"width": max(2, round(stream.width * scale)), "height": max(2, round(stream.height * scale))}
        frames = [frame.to_ndarray(format="rgb24", **size) for frame in container.decode(stream)]
        fps = float(stream.average_rate) if stream.average_rate else None
    if not frames:
        raise VideoReadError(f"no frames in video {path}: the file is empty or not a video")
    return np.stack(frames), {"fps": fps, "loop": None}
