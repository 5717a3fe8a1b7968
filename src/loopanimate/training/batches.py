"""Which clips each process trains on, in which order: seeded, equal shares, and resumable without decoding."""

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
    """Endless micro-batches, starting after the first `consumed` (a resume skips them without decoding them)."""
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
