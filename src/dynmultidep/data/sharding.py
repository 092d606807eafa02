"""Evaluation folds split across distributed ranks, and joined back.

Rank ``r`` of ``world`` evaluates items ``r, r + world, r + 2 world, ...`` of a
fold in ascending length, so every rank gets vlogs of every length and no item
is evaluated twice (unlike Lightning's ``DistributedSampler``, which pads the
fold with repeats). :func:`shard_positions` says where each of a rank's items
sits in the whole fold, to put gathered predictions back in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """The items rank ``rank`` of ``world`` evaluates."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in 0..{world - 1}")
    return list(items[rank::world])


def shard_positions(count: int, rank: int, world: int) -> list[int]:
    """Positions in the whole fold of the ``count`` items of rank ``rank``'s shard."""
    return [rank + k * world for k in range(count)]
