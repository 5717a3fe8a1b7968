"""Clips per second for 35-frame ALSS clips at 256x256, by seeking to each clip's window (`read_frames`) or by decoding
each whole video and indexing it (the naive way), side by side in one process.

Makes `--videos` synthetic H.264 videos of `--video-frames` frames once (kept in `--folder`), then draws the same
clips both ways. Expected: seeking wins, by more the longer the videos.

With `--shards N` it also tars the same videos into N WebDataset shards and times whole epochs through a DataLoader,
loose files (LoopClipDataset) against streamed shards (ShardClipDataset), with 1 and 2 workers.

    python bench/data_throughput.py [--videos 1000] [--video-frames 240] [--clips 200] [--shards 0]
"""

from __future__ import annotations

import argparse
import tarfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from loopanimate.data import alss_indices, probe, read_frames, read_manifest
from loopanimate.data.dataset import LoopClipDataset, ShardClipDataset, collate_clips
from loopanimate.data.synthetic import drifting_sprites, write_mp4
from loopanimate.image import resize_center_crop

SIZE = (256, 256)


def decode_whole_and_index(path: Path, indices: np.ndarray) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack([resize_center_crop(frames[i], SIZE) for i in indices])


def write_shards(paths: list[Path], folder: Path, count: int) -> list[str]:
    """The videos in `count` shards, video2dataset's layout (KEY.mp4 + KEY.txt), made once."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for number in range(count):
        shard = folder / f"{number:06d}.tar"
        if not shard.is_file():
            with tarfile.open(shard.with_suffix(".tmp"), "w") as tar:
                for path in paths[number::count]:
                    tar.add(path, arcname=path.name)
                    tar.add(path.with_suffix(".txt"), arcname=path.with_suffix(".txt").name)
            shard.with_suffix(".tmp").rename(shard)
        shards.append(str(shard))
    return shards


def epoch_rate(dataset: torch.utils.data.Dataset, workers: int) -> float:
    """Clips per second over one epoch through a DataLoader (batches of 4), worker start-up included."""
    start, clips = time.perf_counter(), 0
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=workers, collate_fn=collate_clips)
    for batch in loader:
        clips += len(batch["caption"])
    return clips / (time.perf_counter() - start)


def compare_shards(paths: list[Path], folder: Path, count: int) -> None:
    entries = read_manifest(folder)
    shards = write_shards(paths, folder.parent / f"{folder.name}-shards{count}", count)
    print("\n| data | workers | clips/s |\n| --- | --- | --- |")
    for workers in (1, 2):
        for name, dataset in (
            ("loose files", LoopClipDataset(entries, 35, SIZE)),
            (f"{count} tar shards", ShardClipDataset(shards, 35, SIZE, epochs=1)),
        ):
            print(f"| {name} | {workers} | {epoch_rate(dataset, workers):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--video-frames", type=int, default=240, help="frames per synthetic video (10 s at 24 fps)")
    parser.add_argument("--clips", type=int, default=200, help="clips timed each way")
    parser.add_argument("--folder", default=".cache/bench-videos")
    parser.add_argument("--shards", type=int, default=0, help="also time an epoch from this many tar shards")
    args = parser.parse_args()

    folder = Path(args.folder) / f"{args.videos}x{args.video_frames}"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    paths = []
    for number in range(args.videos):
        path = folder / f"video{number:05d}.mp4"
        if not path.is_file():
            write_mp4(path, drifting_sprites(args.video_frames, (288, 384), seed=number))
        path.with_suffix(".txt").write_text(f"synthetic video {number}")  # the shards' captions
        paths.append(path)
    print(
        f"{args.videos} synthetic videos of {args.video_frames} frames at 384x288, "
        f"ready in {time.perf_counter() - start:.0f} s"
    )

    rng = np.random.default_rng(0)
    chosen = rng.choice(len(paths), size=args.clips, replace=False)
    clips = [(paths[i], alss_indices(probe(paths[i]).frames, 35, rng)) for i in chosen]
    timings = {}
    for name, read in (
        ("seek to the window", lambda p, idx: read_frames(p, idx, SIZE)),
        ("decode whole video", decode_whole_and_index),
    ):
        start = time.perf_counter()
        for path, indices in clips:
            assert read(path, indices).shape == (35, *SIZE, 3)
        timings[name] = args.clips / (time.perf_counter() - start)
    for name, rate in timings.items():
        print(f"{name}: {rate:.1f} clips/s")
    print(f"ratio seek / whole: {timings['seek to the window'] / timings['decode whole video']:.2f}")
    if args.shards:
        compare_shards(paths, folder, args.shards)


if __name__ == "__main__":
    main()
