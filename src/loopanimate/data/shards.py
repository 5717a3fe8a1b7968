"""WebDataset shards as manifests: tar files of `KEY.mp4` + `KEY.txt` / `KEY.json` samples (video2dataset's layout).

A shard spec is one `.tar`, a brace pattern (`shards/{000000..000999}.tar`), a folder of `.tar` files, or an fsspec
URL (`s3://`, `gs://`, `https://`, `file://`, `memory://`, ...) or `pipe:COMMAND` (the command's standard output is
the tar). Shards are read as streams, member by member, and a video stays in memory: nothing is extracted to disk.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from loopanimate.data.manifest import VIDEO_SUFFIXES, ManifestEntry
from loopanimate.errors import InvalidArgumentError

logger = logging.getLogger(__name__)
BRACE = re.compile(r"\{([^{}]*)\}")
UNREADABLE_REST = "(unreadable rest of the shard)"


def expand_braces(pattern: str) -> list[str]:
    """`a{000..002}b{x,y}` -> a000bx, a000by, a001bx, ... (numeric ranges keep the first bound's zero padding)."""
    match = BRACE.search(pattern)
    if match is None:
        return [pattern]
    body = match.group(1)
    if (span := re.fullmatch(r"(\d+)\.\.(\d+)", body)) is not None:
        low, high = span.groups()
        if int(high) < int(low):
            raise InvalidArgumentError(f"shard pattern {pattern}: {{{body}}} runs backwards: write {{{high}..{low}}}")
        choices = [str(number).zfill(len(low)) for number in range(int(low), int(high) + 1)]
    elif "," in body:
        choices = body.split(",")
    else:
        raise InvalidArgumentError(f"shard pattern {pattern}: {{{body}}} is neither {{A..B}} nor {{x,y}}")
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [head + choice + rest for choice in choices for rest in expand_braces(tail)]


def is_url(source: str) -> bool:
    return source.startswith("pipe:") or "://" in source


def shard_urls(source: str | os.PathLike) -> list[str] | None:
    """The shards a spec names, in order, or None when `source` is not a shard spec (a CSV, a JSONL, a video folder).

    Local shards must exist (checked here, before any work); URLs are only opened when read.
    """
    text = str(source)
    folder = Path(text)
    if not is_url(text) and folder.is_dir():
        tars = sorted(str(path) for path in folder.glob("*.tar"))
        return tars or None
    if not (is_url(text) or text.endswith(".tar") or BRACE.search(text)):
        return None
    urls = expand_braces(text)
    for url in urls:
        if not is_url(url) and not Path(url).is_file():
            raise InvalidArgumentError(f"shard not found: {url} (check the path or the {{A..B}} pattern)")
    return urls


@contextlib.contextmanager
def open_shard(url: str) -> Iterator[BinaryIO]:
    """A shard's bytes as a stream: a local file, an fsspec URL, or a `pipe:` command's output."""
    if url.startswith("pipe:"):
        # The command is the spec's author's own (as in webdataset): the shell runs what the config says.
        process = subprocess.Popen(url.removeprefix("pipe:"), shell=True, stdout=subprocess.PIPE)
        try:
            yield process.stdout
        finally:
            process.stdout.close()
            if process.wait() != 0:
                logger.warning("%s exited with status %d", url, process.returncode)
    elif is_url(url):
        import fsspec

        with fsspec.open(url, "rb") as stream:
            yield stream
    else:
        with open(url, "rb") as stream:
            yield stream


def split_key(member: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the path up to the first dot of the file name, the rest is the extension."""
    folder, _, name = member.rpartition("/")
    stem, _, extension = name.partition(".")
    return (f"{folder}/{stem}" if folder else stem), extension.lower()


def iter_shard(url: str) -> Iterator[ManifestEntry]:
    """Every sample of one shard, streamed. A tar that breaks off yields one entry for its unreadable rest, which
    decodes as corrupt, so `data check` and training count it instead of stopping."""
    key, files = None, {}
    try:
        with open_shard(url) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                member_key, extension = split_key(member.name)
                if member_key != key and key is not None:
                    yield _sample(url, key, files)
                    files = {}
                key, files[extension] = member_key, tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        logger.warning("shard %s breaks off (%s): the rest of it is skipped", url, error)
        # The sample being read when the tar broke is part of its unreadable rest.
        yield ManifestEntry(Path(UNREADABLE_REST), "", data=b"", shard=url)
        return
    if key is not None:
        yield _sample(url, key, files)


def iter_shards(urls: Iterable[str]) -> Iterator[ManifestEntry]:
    return itertools.chain.from_iterable(iter_shard(url) for url in urls)


def split_shards(urls: list[str], rank: int, world: int, worker: int, workers: int) -> list[str]:
    """The shards one dataloader worker of one process reads: every (world * workers)-th, so each shard is read by
    exactly one worker of one process per epoch, and no sample is read twice or skipped."""
    return urls[rank * workers + worker :: world * workers]


def _sample(url: str, key: str, files: dict[str, bytes]) -> ManifestEntry:
    video = next((ext for ext in files if f".{ext}" in VIDEO_SUFFIXES), None)
    caption = files["txt"].decode("utf-8", "replace").strip() if "txt" in files else _json_caption(files.get("json"))
    # A sample without a video (a caption alone) is 'missing', as a manifest row whose file is gone.
    return ManifestEntry(Path(f"{key}.{video or 'mp4'}"), caption, data=files.get(video), shard=url)


def _json_caption(raw: bytes | None) -> str:
    if raw is None:
        return ""
    try:
        meta = json.loads(raw)
    except ValueError:
        return ""  # metadata we cannot parse costs the caption, not the clip
    return str(meta.get("caption") or "") if isinstance(meta, dict) else ""
