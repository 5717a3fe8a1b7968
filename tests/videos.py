"""Small real videos for data tests, encoded with PyAV: frame k shows a square at a place given by k, and its
background brightness is 3k (mod 256), so a decoded frame tells which frame it is."""

from pathlib import Path

import numpy as np

from loopanimate.data.synthetic import write_mp4


def frame_picture(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    picture = np.full((height, width, 3), (3 * index) % 256, np.uint8)
    x = 4 + (index * 3) % (width - 16)
    picture[16:28, x : x + 12] = [250, 40, 40]
    return picture


def make_video(path: Path, frames: int, width: int = 64, height: int = 48, fps: int = 24, gop: int = 12) -> Path:
    write_mp4(path, (frame_picture(index, width, height) for index in range(frames)), fps=fps, gop=gop, crf=12)
    return path


def frame_number(frame: np.ndarray) -> int:
    """Which frame a decoded picture is (from the background brightness in its top rows)."""
    return round(float(frame[:8].mean()) / 3)


def make_collection(folder: Path) -> dict[str, Path]:
    """Three good videos, a short one, a truncated one, an empty file and a text file named .mp4, with captions."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = {f"good{k}": make_video(folder / f"good{k}.mp4", 60 + 10 * k) for k in range(3)}
    videos["short"] = make_video(folder / "short.mp4", 10)
    truncated = make_video(folder / "long.mp4", 90).read_bytes()
    (folder / "long.mp4").unlink()
    videos["truncated"] = folder / "truncated.mp4"
    videos["truncated"].write_bytes(truncated[: len(truncated) // 3])
    videos["empty"] = folder / "empty.mp4"
    videos["empty"].write_bytes(b"")
    videos["text"] = folder / "text.mp4"
    videos["text"].write_text("this is not a video")
    for name, path in videos.items():
        path.with_suffix(".txt").write_text(f"a square moving in {name}")
    return videos
