"""Training-video manifests: a WebVid-style CSV, a JSONL file, a folder of videos with same-name captions, or
WebDataset shards (shards.py)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loopanimate.errors import InvalidArgumentError
from loopanimate.jsonl import TEXT, iter_jsonl
from loopanimate.reader import read_text

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
WEBVID_COLUMNS = ("videoid", "name", "page_dir")


@dataclass(frozen=True)
class ManifestEntry:
    """A video and its caption. A shard's sample holds its video's bytes (`data`) and its shard's URL; `path` is then
    the member's name inside the shard."""

    path: Path
    caption: str
    data: bytes | None = None
    shard: str = ""

    @property
    def name(self) -> str:
        return f"{self.shard}:{self.path}" if self.shard else str(self.path)

    @property
    def missing(self) -> bool:
        return self.data is None if self.shard else not self.path.is_file()

    def open(self) -> Path | io.BytesIO:
        """What PyAV opens: the file, or the shard member's bytes in memory (named, for error messages)."""
        if self.data is None:
            return self.path
        stream = io.BytesIO(self.data)
        stream.name = self.name
        return stream


def iter_manifest(source: str | os.PathLike, root: str | os.PathLike | None = None) -> Iterator[ManifestEntry]:
    """Every (video path, caption) of a manifest, streamed, so millions of rows never sit in memory at once.

    - CSV (WebVid-10M layout): columns videoid, name (the caption), page_dir; the file is
      `<root>/<page_dir>/<videoid>.mp4`, root defaulting to the CSV's folder.
    - JSONL: one {"video": path, "caption": text} per line, paths relative to the file's folder.
    - folder: every video file, captioned by the same-name .txt beside it (empty when there is none).
    - WebDataset shards: a .tar, a {000..999} pattern, a folder of .tar files or a URL (`shard_urls`).
    """
    from loopanimate.data.shards import iter_shards, shard_urls

    if (urls := shard_urls(source)) is not None:
        yield from iter_shards(urls)
        return
    source = Path(source)
    if not source.exists():
        raise InvalidArgumentError(
            f"manifest not found: {source} (give a .csv, a .jsonl, a folder of videos or WebDataset .tar shards)"
        )
    if source.is_dir():
        yield from _iter_folder(source)
    elif source.suffix == ".csv":
        yield from _iter_webvid_csv(source, Path(root) if root else source.parent)
    elif source.suffix == ".jsonl":
        yield from _iter_jsonl(source, Path(root) if root else source.parent)
    else:
        raise InvalidArgumentError(
            f"unknown manifest type {source.suffix!r}: give a WebVid .csv, a .jsonl, a folder or .tar shards"
        )


def read_manifest(source: str | os.PathLike, root: str | os.PathLike | None = None) -> list[ManifestEntry]:
    return list(iter_manifest(source, root))


def _iter_folder(folder: Path) -> Iterator[ManifestEntry]:
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            caption_file = path.with_suffix(".txt")
            caption = read_text(caption_file, "caption").strip() if caption_file.is_file() else ""
            yield ManifestEntry(path, caption)


def _iter_webvid_csv(source: Path, root: Path) -> Iterator[ManifestEntry]:
    reader = csv.DictReader(io.StringIO(read_text(source, "manifest"), newline=""))
    missing = [column for column in WEBVID_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise InvalidArgumentError(
            f"{source} lacks the WebVid column(s) {', '.join(missing)}: it needs videoid, name and page_dir"
        )
    for row in reader:
        yield ManifestEntry(root / row["page_dir"] / f"{row['videoid']}.mp4", row["name"] or "")


def _iter_jsonl(source: Path, root: Path) -> Iterator[ManifestEntry]:
    for entry in iter_jsonl(source, "video", '{"video": PATH, "caption": TEXT}', {"caption": TEXT}):
        yield ManifestEntry(root / entry["video"], str(entry.get("caption", "")))
