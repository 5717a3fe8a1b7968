"""Datasets of loop clips: decoded from videos or WebDataset shards (ALSS on the fly), or read from a latent cache."""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from loopanimate.data.alss import ClipTooShortError, alss_indices
from loopanimate.data.manifest import ManifestEntry, read_manifest
from loopanimate.data.shards import iter_shards, shard_urls, split_shards
from loopanimate.data.video import probe, read_frames
from loopanimate.errors import InvalidArgumentError, LoopAnimateError, VideoReadError

logger = logging.getLogger(__name__)
CACHE_INDEX = "index.json"


def load_clip(
    entry: ManifestEntry, num_frames: int, size: tuple[int, int], mode: str, rng: np.random.Generator, max_stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """One clip of `entry`'s video: frames (F, H, W, 3) uint8 and their source indices. Raises SkippedVideo."""
    if entry.missing:
        raise SkippedVideo("missing", f"video not found: {entry.name}")
    try:
        info = probe(entry.open())
        indices = alss_indices(info.frames, num_frames, rng, max_stride=max_stride, mode=mode)
        return read_frames(entry.open(), indices, size), indices
    except ClipTooShortError as error:
        raise SkippedVideo("too short", str(error)) from None
    except VideoReadError as error:
        raise SkippedVideo("corrupt", str(error)) from None


class NoClipError(LoopAnimateError):
    """Every video tried in a row gave no clip: the data set is broken, not one file."""


class SkippedVideo(Exception):
    """A video that yields no clip, and why: 'missing', 'corrupt' or 'too short'."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def to_model_range(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, H, W) float32 in [-1, 1], the VAE's input range."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def clip_item(entry: ManifestEntry, frames: np.ndarray, indices: np.ndarray, skipped: list) -> dict:
    pixels = to_model_range(frames)
    return {
        "pixel_values": pixels,
        "first_frame": pixels[0],
        "caption": entry.caption,
        "indices": torch.from_numpy(indices),
        "skipped": skipped,
    }


class LoopClipDataset(torch.utils.data.Dataset):
    """ALSS clips decoded from videos: {pixel_values (F, 3, H, W) in [-1, 1], first_frame (3, H, W), caption, ...}.

    Item i draws its clip from its own random stream (seed, epoch, i), so it is the same in any worker and after a
    resume. A video that yields no clip is skipped for the next one, and listed in the item's `skipped` so the
    main process can count it (workers do not share counters).
    """

    def __init__(
        self,
        entries: Sequence[ManifestEntry],
        num_frames: int,
        size: tuple[int, int] = (256, 256),
        mode: str = "alss",
        max_stride: int = 4,
        seed: int = 0,
        max_attempts: int = 16,
    ) -> None:
        self.entries, self.num_frames, self.size, self.mode = list(entries), num_frames, size, mode
        self.max_stride, self.seed, self.max_attempts, self.epoch = max_stride, seed, max_attempts, 0

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        """Draw new clips (new starts, strides, steps back) each epoch."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict:
        skipped = []
        for attempt in range(min(self.max_attempts, len(self.entries))):
            entry = self.entries[(index + attempt) % len(self.entries)]
            rng = np.random.default_rng([self.seed, self.epoch, index, attempt])
            try:
                frames, indices = load_clip(entry, self.num_frames, self.size, self.mode, rng, self.max_stride)
            except SkippedVideo as skip:
                skipped.append((entry.name, skip.reason, str(skip)))
                continue
            return clip_item(entry, frames, indices, skipped)
        raise NoClipError(f"{len(skipped)} videos in a row gave no clip, the last: {skipped[-1][2]}; run `data check`")


class ShardClipDataset(torch.utils.data.IterableDataset):
    """ALSS clips streamed from WebDataset shards, as LoopClipDataset's items, endlessly or for `epochs` epochs.

    Each epoch shuffles the shard order (the same on every process), gives each dataloader worker of each process its
    own shards (`split_shards`: no sample is read twice or skipped), and draws samples through a shuffle buffer. A
    clip's random stream comes from its sample's name, so it does not depend on which worker reads it. A sample that
    gives no clip is listed in the next item's `skipped`. Each item's `position` is (stream, epoch, samples drawn
    in that epoch, its own included), a stream being one worker's share; `start` ({"next": the stream due next,
    "streams": [[epoch, drawn], ...]}) makes each stream go on from there, reading again without decoding the
    samples it had drawn (shuffles are seeded by seed, epoch, rank and stream alone, so they repeat exactly).
    """

    def __init__(
        self,
        shards: Sequence[str],
        num_frames: int,
        size: tuple[int, int] = (256, 256),
        mode: str = "alss",
        max_stride: int = 4,
        seed: int = 0,
        shuffle_buffer: int = 64,
        epochs: int | None = None,
    ) -> None:
        self.shards, self.num_frames, self.size, self.mode = list(shards), num_frames, size, mode
        self.max_stride, self.seed, self.shuffle_buffer, self.epochs = max_stride, seed, shuffle_buffer, epochs
        self.start: dict | None = None
        self.rank, self.world = 0, 1

    def set_process(self, rank: int, world: int) -> None:
        """Read this process's share; every process needs a shard, or it would wait for clips forever."""
        if len(self.shards) < world:
            raise InvalidArgumentError(
                f"data: {len(self.shards)} shard(s) for {world} processes: each process reads whole shards, so "
                "split the data into at least as many shards as processes"
            )
        self.rank, self.world = rank, world

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        start = self.start or fresh_position(workers)
        # The loader asks its workers in turn from worker 0: the stream due next must be worker 0's.
        stream = (worker + start["next"]) % workers
        first, done = start["streams"][stream]
        skipped: list[tuple[str, str, str]] = []
        epochs = range(first, self.epochs) if self.epochs is not None else itertools.count(first)
        for epoch in epochs:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
            mine = split_shards([self.shards[i] for i in order], self.rank, self.world, stream, workers)
            if not mine:
                return  # more workers than shards: this one has nothing to read
            rng = np.random.default_rng([self.seed, epoch, self.rank, stream])
            drawn = enumerate(shuffled(iter_shards(mine), self.shuffle_buffer, rng), 1)
            clips = done  # a saved position is always a clip's, so a resumed epoch has given one
            for count, entry in itertools.islice(drawn, done, None):  # read again, not decoded
                clip_rng = np.random.default_rng([self.seed, epoch, zlib.crc32(entry.name.encode())])
                try:
                    frames, indices = load_clip(entry, self.num_frames, self.size, self.mode, clip_rng, self.max_stride)
                except SkippedVideo as skip:
                    skipped.append((entry.name, skip.reason, str(skip)))
                    continue
                clips += 1
                yield {**clip_item(entry, frames, indices, skipped), "position": (stream, epoch, count)}
                skipped = []
            if clips == 0:
                why = f"the last: {skipped[-1][2]}" if skipped else "they hold no samples"
                raise NoClipError(f"no sample of shard(s) {', '.join(mine[:3])} gave a clip, {why}; run `data check`")
            done = 0
        for name, reason, message in skipped:  # found after the last clip: no item carries them to the main process
            logger.warning("skipped %s (%s): %s", name, reason, message)


def fresh_position(streams: int) -> dict:
    """The start of `streams` streams: stream 0 next, each in epoch 0 with nothing drawn."""
    return {"next": 0, "streams": [[0, 0] for _ in range(streams)]}


def shuffled(items: Iterable, size: int, rng: np.random.Generator) -> Iterator:
    """`items` in a random order, holding at most `size` of them at once (a stream too large to shuffle whole)."""
    buffer: list = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        slot = int(rng.integers(len(buffer)))
        yield buffer[slot]
        buffer[slot] = item
    rng.shuffle(buffer)
    yield from buffer


class CachedClipDataset(torch.utils.data.Dataset):
    """Clips from a latent cache (`loopanimate data cache`): {latents (F, 4, h, w), first_frame (3, H, W), caption}."""

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        num_frames: int | None = None,
        size: tuple[int, int] | None = None,
        mode: str | None = None,
    ) -> None:
        """Refuses a cache made for other clips: a 15-frame cache must never train a 35-frame stage."""
        self.cache_dir = Path(cache_dir)
        index = json.loads((self.cache_dir / CACHE_INDEX).read_text())
        self.config, self.shards = index["config"], index["shards"]
        wanted = {"num_frames": num_frames, "size": list(size) if size else None, "mode": mode}
        for key, value in wanted.items():
            if value is not None and self.config[key] != value:
                raise InvalidArgumentError(
                    f"the latent cache {self.cache_dir} holds {key} {self.config[key]} but training asks for {value}: "
                    "cache the clips again with matching settings (`loopanimate data cache`)"
                )
        self.offsets = np.cumsum([0] + [shard["count"] for shard in self.shards]).tolist()
        self._captions: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: int) -> dict:
        number = bisect.bisect_right(self.offsets, index) - 1
        row = index - self.offsets[number]
        with safe_open(self.cache_dir / self.shards[number]["file"], framework="pt") as shard:
            if number not in self._captions:
                self._captions[number] = json.loads(shard.metadata()["captions"])
            latents = shard.get_slice("latents")[row].float()
            first_frame = shard.get_slice("first_frame")[row].float() / 127.5 - 1.0
        return {"latents": latents, "first_frame": first_frame, "caption": self._captions[number][row], "skipped": []}


def is_latent_cache(source: str | os.PathLike) -> bool:
    return (Path(source) / CACHE_INDEX).is_file()


def open_dataset(
    source: str | os.PathLike, num_frames: int, size: tuple[int, int], mode: str = "alss", **options
) -> torch.utils.data.Dataset:
    """A latent cache folder made for these clips, WebDataset shards streamed, or any other manifest
    (`iter_manifest`) decoded on the fly."""
    if is_latent_cache(source):
        return CachedClipDataset(source, num_frames, size, mode)
    if (urls := shard_urls(source)) is not None:
        return ShardClipDataset(urls, num_frames, size, mode=mode, **options)
    return LoopClipDataset(read_manifest(source), num_frames, size, mode=mode, **options)


def collate_clips(samples: list[dict]) -> dict:
    """Stack tensors, keep captions as a list, gather every skipped video."""
    batch = {
        key: torch.stack([s[key] for s in samples]) for key in samples[0] if isinstance(samples[0][key], torch.Tensor)
    }
    batch["caption"] = [s["caption"] for s in samples]
    batch["skipped"] = [skip for s in samples for skip in s["skipped"]]
    if "position" in samples[0]:  # a streamed batch comes from one worker: where its stream stands after it
        batch["position"] = samples[-1]["position"]
    return batch


class SkipLog:
    """Counts skipped videos by reason in the main process, and logs each video once."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def record(self, skipped: list[tuple[str, str, str]]) -> None:
        for path, reason, message in skipped:
            if path not in self.seen:
                self.seen[path] = reason
                logger.warning("skipped %s (%s): %s", path, reason, message)

    def summary(self) -> dict[str, int]:
        return dict(Counter(self.seen.values()))
