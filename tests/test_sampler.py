"""Length-bucketed batching: coverage, determinism, bounds and padding waste."""

from __future__ import annotations

import numpy as np
import pytest

from dynmultidep.data.sampler import LengthBucketSampler, padding_fraction
from dynmultidep.data.synthetic.plan import plan_corpus


@pytest.fixture(scope="module")
def dvlog_train_lengths() -> np.ndarray:
    """The 647 training lengths of a full-size D-Vlog twin (real distribution)."""
    return np.array([v.length for v in plan_corpus("dvlog", None, seed=0) if v.fold == "train"])


def random_batches(n: int, batch_size: int, seed: int = 0) -> list[list[int]]:
    order = np.random.default_rng(seed).permutation(n).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def test_every_item_once_per_epoch_and_batch_bounds(dvlog_train_lengths):
    lengths = dvlog_train_lengths
    sampler = LengthBucketSampler(lengths, batch_size=32, max_tokens=32768, seed=1)
    for _ in range(3):
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(len(lengths)))
        for batch in batches:
            assert len(batch) <= 32
            assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 32768


def test_batches_are_fixed_by_seed_and_epoch(dvlog_train_lengths):
    a = LengthBucketSampler(dvlog_train_lengths, batch_size=16, seed=3)
    b = LengthBucketSampler(dvlog_train_lengths, batch_size=16, seed=3)
    c = LengthBucketSampler(dvlog_train_lengths, batch_size=16, seed=4)
    assert a.batches(0) == b.batches(0)
    assert a.batches(0) != a.batches(1)
    assert a.batches(0) != c.batches(0)
    a.set_epoch(5)
    b.set_epoch(5)
    assert list(a) == list(b) == a.batches(5)


def test_iterating_without_set_epoch_reshuffles(dvlog_train_lengths):
    sampler = LengthBucketSampler(dvlog_train_lengths, batch_size=16)
    assert list(sampler) != list(sampler)


def test_shuffling_stays_within_similar_lengths(dvlog_train_lengths):
    lengths = dvlog_train_lengths
    sampler = LengthBucketSampler(lengths, batch_size=8, bucket_ratio=1.05)
    bucket_of = np.empty(len(lengths), dtype=int)
    for k, bucket in enumerate(sampler.buckets):
        assert lengths[bucket].max() <= 1.05 * lengths[bucket].min()
        bucket_of[bucket] = k
    spreads = []
    for batch in sampler.batches(0):
        spanned = np.unique(bucket_of[batch])
        assert spanned.tolist() == list(range(spanned[0], spanned[-1] + 1))  # neighbours only
        spreads.append(lengths[batch].max() / lengths[batch].min())
    assert np.median(spreads) < 1.1
    assert (
        np.median([lengths[b].max() / lengths[b].min() for b in random_batches(len(lengths), 8)])
        > 3
    )


@pytest.mark.parametrize(("batch_size", "max_tokens"), [(8, None), (32, 32768)])
def test_padding_waste_on_dvlog_lengths_is_under_ten_percent(
    dvlog_train_lengths, batch_size, max_tokens
):
    lengths = dvlog_train_lengths
    sampler = LengthBucketSampler(lengths, batch_size=batch_size, max_tokens=max_tokens)
    for epoch in range(5):
        assert padding_fraction(sampler.batches(epoch), lengths) < 0.10
    assert padding_fraction(random_batches(len(lengths), batch_size), lengths) > 0.45


def test_padding_fraction_by_hand():
    lengths = np.array([2, 4, 4, 1])
    # batches [0, 1] -> 2 x 4 = 8 cells, 6 valid; [2, 3] -> 2 x 4 = 8 cells, 5 valid
    assert padding_fraction([[0, 1], [2, 3]], lengths) == pytest.approx(1 - 11 / 16)


def test_unshuffled_batches_ascend_in_length():
    lengths = np.array([5, 1, 9, 3, 7, 2])
    sampler = LengthBucketSampler(lengths, batch_size=2, shuffle=False)
    assert list(sampler) == [[1, 5], [3, 0], [4, 2]]


def test_ranks_share_one_shuffled_list(dvlog_train_lengths):
    shards = [
        LengthBucketSampler(dvlog_train_lengths, batch_size=32, seed=2, num_replicas=3, rank=r)
        for r in range(3)
    ]
    everything = shards[0].batches(0)
    per_rank = [list(s) for s in shards]
    assert len({len(p) for p in per_rank}) == 1 == len({len(s) for s in shards})
    assert len(per_rank[0]) == len(shards[0])
    covered = {tuple(b) for p in per_rank for b in p}
    assert covered == {tuple(b) for b in everything}


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        LengthBucketSampler([], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketSampler([3], batch_size=0)
    with pytest.raises(ValueError, match="rank 2"):
        LengthBucketSampler([3], batch_size=1, num_replicas=2, rank=2)
