"""Which clips each process trains on, in which order: seeded, equal shares, and resumable without decoding (or,
for streamed shards, each process and worker on its own shards)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from loopanimate.data.dataset import collate_clips
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


def micro_batches(dataset, config: TrainConfig, rank: int, world: int, consumed: int) -> Iterator[dict]:
    """Endless micro-batches, starting after the first `consumed` (a resume skips them without decoding them).

    Streamed shards cannot skip without reading, so a resume starts a fresh shuffle of them instead, seeded by
    `consumed` (not the exact shard and sample it stopped at)."""
    if isinstance(dataset, torch.utils.data.IterableDataset):
        dataset.set_process(rank, world)
        dataset.start = consumed
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=config.batch_size, collate_fn=collate_clips, num_workers=config.num_workers
        )
        yield from loader  # the dataset runs epoch after epoch; each worker keeps its stream open
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
