"""Reading training videos with PyAV: probe the stream, then decode only the window of frames a clip needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

import av
import numpy as np

from loopanimate.errors import VideoReadError
from loopanimate.image import resize_center_crop


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


# A file, or a file-like object (a shard member's bytes): PyAV reads either without a copy on disk.
VideoSource = str | os.PathLike | BinaryIO


def _open(path: VideoSource):
    try:
        if hasattr(path, "read"):
            path.seek(0)  # a stream probed before is read again from its start
            container = av.open(path)
        else:
            container = av.open(str(path))
        if not container.streams.video:
            container.close()
            raise VideoReadError(f"no video stream in {_name(path)}: not a video file")
        return container
    except VideoReadError:
        raise
    except FileNotFoundError:
        raise VideoReadError(f"video not found: {_name(path)}") from None
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoReadError(
            f"cannot open video {_name(path)} ({error.__class__.__name__}): corrupt or not a video"
        ) from None


def _name(path: VideoSource) -> str:
    return str(path.name) if hasattr(path, "read") else str(path)  # a Path's .name would drop its folder


def probe(path: VideoSource) -> VideoInfo:
    """Frame count, rate and size from the container's headers (no decoding when the header has the count)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        frames = stream.frames
        if not frames and stream.duration and stream.time_base and fps:
            frames = round(float(stream.duration * stream.time_base) * fps)
        if not frames:  # no count in the header: count by demuxing packets (no decoding)
            frames = sum(1 for packet in container.demux(stream) if packet.size)
        if not frames:
            raise VideoReadError(f"no frames in {_name(path)}: the file is empty or truncated")
        return VideoInfo(
            frames=int(frames), fps=fps, width=stream.codec_context.width, height=stream.codec_context.height
        )


def read_frames(path: VideoSource, indices: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """The frames at `indices` (repeats allowed) as (F, H, W, 3) uint8, resized and centre-cropped to `size`.

    Seeks to the keyframe before the first needed frame and decodes only up to the last one, so a clip from the
    middle of a long video costs its own window, not the whole video. Frame numbers come from timestamps
    (constant frame rate assumed, as in WebVid).
    """
    wanted = sorted(set(int(i) for i in indices))
    first, last = wanted[0], wanted[-1]
    found: dict[int, np.ndarray] = {}
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.guessed_rate)
        start = stream.start_time or 0
        try:
            for seek_to in (first, 0):  # if the seek lands past the first frame, read from the start instead
                container.seek(start + int(seek_to / fps / stream.time_base), stream=stream, backward=True)
                for frame in container.decode(stream):
                    index = (
                        round(float((frame.pts - start) * stream.time_base) * fps) if frame.pts is not None else None
                    )
                    if index is None or index > last:
                        break
                    if index in wanted:
                        picture = frame.to_ndarray(format="rgb24")
                        found[index] = resize_center_crop(picture, size) if size else picture
                if first in found or seek_to == 0:
                    break
        except (av.FFmpegError, OSError, ValueError) as error:
            raise VideoReadError(
                f"cannot decode video {_name(path)} ({error.__class__.__name__}): corrupt or truncated"
            ) from None
    missing = [i for i in wanted if i not in found]
    if missing:
        raise VideoReadError(
            f"video {_name(path)} ends before frame {missing[0]}: truncated, or fewer frames than its header says"
        )
    return np.stack([found[int(i)] for i in indices])
