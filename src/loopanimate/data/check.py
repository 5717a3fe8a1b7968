"""`data check`: what a manifest's videos hold, and which of them can give a training clip."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from loopanimate.data.alss import clip_span, min_stride
from loopanimate.data.manifest import ManifestEntry
from loopanimate.data.video import probe, read_frames
from loopanimate.errors import VideoReadError

STATUSES = ("ok", "missing", "corrupt", "too short")


def check_videos(
    entries: Iterable[ManifestEntry], num_frames: int, mode: str = "alss", progress: Callable[[int], None] | None = None
) -> dict:
    """Count ok / missing / corrupt / too short videos (in all, and per shard for WebDataset shards), with durations
    and resolutions of the readable ones.

    A video counts as readable only if its last frame decodes, which catches truncated files whose headers look whole.
    """
    counts: Counter[str] = Counter()
    per_shard: dict[str, Counter[str]] = {}
    problems: dict[str, list[str]] = {"missing": [], "corrupt": [], "too short": []}
    durations, resolutions = [], Counter()
    needed = clip_span(num_frames, min_stride(num_frames, mode), mode) + 1
    for number, entry in enumerate(entries, start=1):
        if entry.missing:
            status = "missing"
        else:
            try:
                info = probe(entry.open())
                read_frames(entry.open(), np.array([info.frames - 1]))
                durations.append(info.seconds)
                resolutions[f"{info.width}x{info.height}"] += 1
                status = "ok" if info.frames >= needed else "too short"
            except VideoReadError:
                status = "corrupt"
        counts[status] += 1
        if entry.shard:
            per_shard.setdefault(entry.shard, Counter())[status] += 1
        if status != "ok":
            problems[status].append(entry.name)
        if progress is not None:
            progress(number)
    return {
        "counts": _by_status(counts),
        "shards": {shard: _by_status(shard_counts) for shard, shard_counts in per_shard.items()},
        "frames_needed": needed,
        "seconds": _summary(durations),
        "resolutions": dict(resolutions.most_common(10)),
        "problems": problems,
    }


def _by_status(counts: Counter[str]) -> dict[str, int]:
    return {status: counts.get(status, 0) for status in STATUSES}


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"min": math.nan, "median": math.nan, "max": math.nan}
    return {"min": float(np.min(values)), "median": float(np.median(values)), "max": float(np.max(values))}
