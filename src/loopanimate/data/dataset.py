"""Datasets of loop clips: decoded from videos (ALSS on the fly) or read from a latent cache."""

from __future__ import annotations

import bisect
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from loopanimate.data.alss import ClipTooShortError, alss_indices
from loopanimate.data.manifest import ManifestEntry, read_manifest
from loopanimate.data.video import probe, read_frames
from loopanimate.errors import InvalidArgumentError, LoopAnimateError, VideoReadError

logger = logging.getLogger(__name__)
CACHE_INDEX = "index.json"


def load_clip(
    entry: ManifestEntry, num_frames: int, size: tuple[int, int], mode: str, rng: np.random.Generator, max_stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """One clip of `entry`'s video: frames (F, H, W, 3) uint8 and their source indices. Raises SkippedVideo."""
    if not entry.path.is_file():
        raise SkippedVideo("missing", f"video not found: {entry.path}")
    try:
        info = probe(entry.path)
        indices = alss_indices(info.frames, num_frames, rng, max_stride=max_stride, mode=mode)
        return read_frames(entry.path, indices, size), indices
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
                skipped.append((str(entry.path), skip.reason, str(skip)))
                continue
            pixels = to_model_range(frames)
            return {
                "pixel_values": pixels,
                "first_frame": pixels[0],
                "caption": entry.caption,
                "indices": torch.from_numpy(indices),
                "skipped": skipped,
            }
        raise NoClipError(f"{len(skipped)} videos in a row gave no clip, the last: {skipped[-1][2]}; run `data check`")


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
    """A latent cache folder made for these clips, or any manifest (`iter_manifest`) decoded on the fly."""
    if is_latent_cache(source):
        return CachedClipDataset(source, num_frames, size, mode)
    return LoopClipDataset(read_manifest(source), num_frames, size, mode=mode, **options)


def collate_clips(samples: list[dict]) -> dict:
    """Stack tensors, keep captions as a list, gather every skipped video."""
    batch = {
        key: torch.stack([s[key] for s in samples]) for key in samples[0] if isinstance(samples[0][key], torch.Tensor)
    }
    batch["caption"] = [s["caption"] for s in samples]
    batch["skipped"] = [skip for s in samples for skip in s["skipped"]]
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
