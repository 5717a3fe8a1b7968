"""Which clips each process trains on, in which order: seeded, equal shares, and resumable without decoding (or,
for streamed shards, each process and worker on its own shards, resumable at the sample each stopped at)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import torch

from loopanimate.data.dataset import collate_clips, fresh_position
from loopanimate.errors import InvalidArgumentError
from loopanimate.training.config import TrainConfig


def epoch_order(num_items: int, seed: int, epoch: int, rank: int, world: int, batch_size: int) -> list[int]:
    """This process's items for `epoch`: a seeded shuffle, an equal share per process, whole batches only."""
    order = np.random.default_rng([seed, epoch]).permutation(num_items)
    share = len(order) // world // batch_size * batch_size
    return order[rank * share : (rank + 1) * share].tolist()


def check_data(dataset, config: TrainConfig, world: int) -> None:
    """InvalidArgumentError, before a model loads, when the data cannot feed every process."""
    if isinstance(dataset, torch.utils.data.IterableDataset):
        dataset.set_process(0, world)  # shards: each process needs one of its own
    else:
        batches_per_epoch(dataset, config, world)


def batches_per_epoch(dataset, config: TrainConfig, world: int) -> int:
    """Micro-batches per process per epoch; InvalidArgumentError when the data do not fill one on every process."""
    count = len(epoch_order(len(dataset), config.seed, 0, 0, world, config.batch_size)) // config.batch_size
    if count == 0:
        raise InvalidArgumentError(
            f"data: {config.data} holds {len(dataset)} clip(s), too few for {world} process(es) x batch_size "
            f"{config.batch_size}: add videos or lower batch_size"
        )
    return count


def stream_origin(dataset, config: TrainConfig) -> dict | None:
    """What a position in streamed shards is a position in (None for other data): a checkpoint's position fits only
    a run with the same shards, workers and seed."""
    if not isinstance(dataset, torch.utils.data.IterableDataset):
        return None
    digest = hashlib.sha256("\n".join(dataset.shards).encode()).hexdigest()[:16]
    return {
        "data": str(config.data),
        "shards": len(dataset.shards),
        "digest": digest,
        "num_workers": config.num_workers,
        "seed": config.seed,
    }


def micro_batches(
    dataset, config: TrainConfig, rank: int, world: int, consumed: int, position: dict | None = None
) -> Iterator[dict]:
    """Endless micro-batches, starting after the first `consumed` (a resume skips them without decoding them).

    Streamed shards start instead at `position` (a checkpoint's, None: the beginning), see `stream_batches`."""
    if isinstance(dataset, torch.utils.data.IterableDataset):
        yield from stream_batches(dataset, config, rank, world, position)
        return
    epoch, skip = divmod(consumed, batches_per_epoch(dataset, config, world))
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        items = epoch_order(len(dataset), config.seed, epoch, rank, world, config.batch_size)[
            skip * config.batch_size :
        ]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=config.batch_size,
            sampler=items,
            collate_fn=collate_clips,
            num_workers=config.num_workers,
            generator=torch.Generator().manual_seed(epoch),  # never draws from the global generator
        )
        yield from loader
        epoch, skip = epoch + 1, 0


def stream_batches(dataset, config: TrainConfig, rank: int, world: int, position: dict | None) -> Iterator[dict]:
    """Endless micro-batches from shards, from `position` on; each carries in "position" where this process's
    streams stand after it ({"next": the stream due next, "streams": [[epoch, samples drawn], ...]}).

    A batch comes whole from one worker, and the loader takes them from its workers in turn, so the samples each
    stream drew (corrupt ones included) and the stream due next say exactly where to go on."""
    dataset.set_process(rank, world)
    streams = max(config.num_workers, 1)  # no workers: the main process reads the one stream
    dataset.start = position or fresh_position(streams)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, collate_fn=collate_clips, num_workers=config.num_workers
    )
    now = dataset.start
    for batch in loader:  # the dataset runs epoch after epoch; each worker keeps its stream open
        stream, epoch, drawn = batch["position"]
        places = [*now["streams"][:stream], [epoch, drawn], *now["streams"][stream + 1 :]]
        now = {"next": (stream + 1) % streams, "streams": places}
        yield {**batch, "position": now}
