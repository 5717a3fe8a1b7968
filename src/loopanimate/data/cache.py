"""The latent cache: clips encoded once by the VAE into safetensors shards, so training skips decoding and the VAE.

Shard k holds the clips of manifest entries [k * shard_size, (k + 1) * shard_size), each written under a temporary
name and renamed, so a shard on disk is always whole. An interrupted run started again with the same settings
keeps the shards it finds (streaming past their entries without decoding them) and writes the rest; `index.json`
is written last. Entries are streamed, so WebDataset shards are never held in memory beyond one cache shard's.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sized
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors import safe_open
from safetensors.torch import save_file

from loopanimate.atomic import atomic_file
from loopanimate.data.dataset import CACHE_INDEX, SkippedVideo, load_clip, to_model_range
from loopanimate.data.manifest import ManifestEntry
from loopanimate.errors import InvalidArgumentError
from loopanimate.models.latents import encode_latents

CONFIG_FILE = "cache_config.json"
SHARD_NAME = re.compile(r"shard-\d{5,}\.safetensors")


def is_cache_entry(path: Path) -> bool:
    """One of a latent cache's own files (its config, its index, a shard, or an interrupted write's temporary): a
    cache folder holding anything else is a user's, never written into."""
    return path.is_file() and (
        path.name in (CONFIG_FILE, CACHE_INDEX) or SHARD_NAME.fullmatch(path.name) is not None or ".tmp" in path.name
    )


def shard_name(number: int) -> str:
    return f"shard-{number:05d}.safetensors"


def cache_latents(
    entries: Iterable[ManifestEntry],
    vae: AutoencoderKL,
    out_dir: str | os.PathLike,
    num_frames: int,
    size: tuple[int, int] = (256, 256),
    mode: str = "alss",
    max_stride: int = 4,
    seed: int = 0,
    shard_size: int = 64,
    dtype: torch.dtype = torch.float16,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict:
    """Encode one clip per entry (the clip LoopClipDataset draws at epoch 0) into shards; return the index."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "num_frames": num_frames,
        "size": list(size),
        "mode": mode,
        "max_stride": max_stride,
        "seed": seed,
        "shard_size": shard_size,
        "dtype": str(dtype).removeprefix("torch."),
    }
    config_path = out_dir / CONFIG_FILE
    if config_path.is_file() and json.loads(config_path.read_text()) != config:
        raise InvalidArgumentError(
            f"{out_dir} holds a cache made with other settings ({CONFIG_FILE}): use a new folder, or the same settings"
        )
    with atomic_file(config_path) as tmp:
        tmp.write_text(json.dumps(config, indent=2))

    total = math.ceil(len(entries) / shard_size) if isinstance(entries, Sized) else None  # a stream's is unknown
    stream = iter(entries)
    shards = []
    for number in itertools.count():
        chunk = list(itertools.islice(stream, shard_size))
        if not chunk:
            break
        path = out_dir / shard_name(number)
        if not path.is_file():
            _write_shard(chunk, number * shard_size, vae, path, config, dtype)
        with safe_open(path, framework="pt") as shard:  # reads the header only
            metadata = shard.metadata()
        shards.append(
            {
                "file": path.name,
                "count": len(json.loads(metadata["captions"])),
                "skipped": json.loads(metadata["skipped"]),
            }
        )
        if progress is not None:
            progress(number + 1, total)
    index = {"config": config, "shards": shards}
    with atomic_file(out_dir / CACHE_INDEX) as tmp:
        tmp.write_text(json.dumps(index, indent=2))
    return index


def _write_shard(chunk, start, vae, path, config, dtype) -> None:
    latents, first_frames, captions, videos, indices, skipped = [], [], [], [], [], []
    for index, entry in enumerate(chunk, start=start):
        rng = np.random.default_rng([config["seed"], 0, index, 0])  # LoopClipDataset's stream for item `index`, epoch 0
        try:
            frames, clip_indices = load_clip(
                entry, config["num_frames"], tuple(config["size"]), config["mode"], rng, config["max_stride"]
            )
        except SkippedVideo as skip:
            skipped.append([entry.name, skip.reason])
            continue
        pixels = to_model_range(frames)
        latents.append(encode_latents(vae, pixels).to("cpu", dtype))
        first_frames.append(torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous())
        captions.append(entry.caption)
        videos.append(entry.name)
        indices.append(clip_indices.tolist())
    height, width = config["size"]
    tensors = {
        "latents": torch.stack(latents)
        if latents
        else torch.zeros(0, config["num_frames"], 4, height // 8, width // 8, dtype=dtype),
        "first_frame": torch.stack(first_frames)
        if first_frames
        else torch.zeros(0, 3, height, width, dtype=torch.uint8),
    }
    metadata = {
        key: json.dumps(value)
        for key, value in {"captions": captions, "videos": videos, "indices": indices, "skipped": skipped}.items()
    }
    with atomic_file(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)
