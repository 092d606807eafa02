"""Length-bucketed batching: batches of similar-length vlogs, fresh each epoch.

Vlog lengths are heavy-tailed (D-Vlog: median 472 steps, max 3968). Random
batches of 32 pad about 70% of the tensor; sorted batches waste little but
always hold the same vlogs. This sampler sits between the two:

1. Items are sorted by length once and cut into *buckets* whose longest item
   is at most ``bucket_ratio`` times its shortest.
2. Each epoch, items are shuffled within their bucket and cut into batches in
   bucket order; the few items left at the end of a bucket open the first
   batch of the next one, so almost every batch is full.
3. The order of the batches is shuffled.

``max_tokens`` bounds ``batch size x longest length`` (the padded tensor, and
so activation memory): buckets of long vlogs get smaller batches. The number
and sizes of batches depend on the lengths only, never on the seed, so every
epoch (and every rank) has the same number of batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class LengthBucketSampler(Sampler[list]):
    """Yields lists of dataset indices, one list per batch (with ``with_epoch``, lists
    of ``(index, epoch)``: keys for datasets whose items depend on the epoch).

    Args:
        lengths: ``(N,)`` length of each item.
        batch_size: most items in a batch.
        max_tokens: most ``items x longest length`` in a batch (``None``: no
            bound). A single item longer than this still forms its own batch.
        bucket_ratio: longest/shortest length allowed within a bucket.
        shuffle: ``False`` gives batches in ascending length, the same every epoch.
        drop_last: drop the final, possibly smaller, batch.
        seed: with the epoch, fixes every random choice.
        num_replicas, rank: for distributed training, each rank takes every
            ``num_replicas``-th batch of the same shuffled list (the list is
            padded by repetition so all ranks get as many batches).
        with_epoch: yield ``(index, epoch)`` keys instead of indices.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        max_tokens: int | None = None,
        bucket_ratio: float = 1.05,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        with_epoch: bool = False,
    ):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or len(self.lengths) == 0:
            raise ValueError("lengths must be a non-empty 1-D sequence")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if bucket_ratio < 1.0:
            raise ValueError(f"bucket_ratio must be at least 1, got {bucket_ratio}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.batch_size = int(batch_size)
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.with_epoch = with_epoch
        self.epoch = 0
        self.buckets = self._make_buckets(bucket_ratio)
        self._num_batches = len(self.batches(0))

    def _make_buckets(self, ratio: float) -> list[np.ndarray]:
        order = np.argsort(self.lengths, kind="stable")
        buckets, start = [], 0
        for i in range(1, len(order) + 1):
            if i == len(order) or self.lengths[order[i]] > ratio * self.lengths[order[start]]:
                buckets.append(order[start:i])
                start = i
        return buckets

    def _size_for(self, bucket: np.ndarray) -> int:
        if self.max_tokens is None:
            return self.batch_size
        longest = int(self.lengths[bucket].max())
        return max(1, min(self.batch_size, self.max_tokens // longest))

    def batches(self, epoch: int) -> list[list[int]]:
        """All batches of ``epoch`` (before splitting across ranks)."""
        rng = np.random.default_rng([self.seed, epoch])
        batches: list[list[int]] = []
        carry: list[int] = []
        for bucket in self.buckets:
            items = carry + (rng.permutation(bucket) if self.shuffle else bucket).tolist()
            size = self._size_for(bucket)
            full = len(items) // size
            batches += [items[j * size : (j + 1) * size] for j in range(full)]
            carry = items[full * size :]
        if carry and not self.drop_last:
            batches.append(carry)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[list]:
        epoch = self.epoch
        batches = self.batches(epoch)
        if self.num_replicas > 1:
            per_rank = -(-len(batches) // self.num_replicas)
            padded = [batches[i % len(batches)] for i in range(per_rank * self.num_replicas)]
            batches = padded[self.rank :: self.num_replicas]
        # Iterating without set_epoch (outside Lightning) still reshuffles next time.
        self.epoch += 1
        if self.with_epoch:
            batches = [[(i, epoch) for i in batch] for batch in batches]
        yield from batches

    def __len__(self) -> int:
        return -(-self._num_batches // self.num_replicas)


def padding_fraction(batches: Sequence[Sequence[int]], lengths: np.ndarray) -> float:
    """Share of the padded tensors (sum of ``batch size x longest``) that is padding."""
    lengths = np.asarray(lengths)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    return 1.0 - float(lengths[[i for b in batches for i in b]].sum()) / padded
