"""What a synthetic corpus holds before any feature is drawn: ids, folds,
labels, genders and lengths, matched to the published statistics.

Facts used (from the corpora's releases):

* D-Vlog: 961 vlogs; per fold, label and gender counts below; lengths in
  seconds (= rows) with quantiles min 23, p5 111, p25 312, median 472,
  p75 766, p95 1374, p99 2308, max 3968 (ln T roughly normal, mean 6.14,
  std 0.74); depressed vlogs longer on average (640 s vs 536 s).
* LMVD: 1823 vlogs, no gender; the common 8:1:1 split counts below; ids with
  meaningful leading zeros; mean length about 420 steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (fold, label, gender) -> count. label 1 = depression.
DVLOG_COUNTS = {
    ("train", 1, "f"): 255, ("train", 1, "m"): 120,
    ("train", 0, "f"): 176, ("train", 0, "m"): 96,
    ("valid", 1, "f"): 36, ("valid", 1, "m"): 21,
    ("valid", 0, "f"): 26, ("valid", 0, "m"): 19,
    ("test", 1, "f"): 82, ("test", 1, "m"): 41,
    ("test", 0, "f"): 64, ("test", 0, "m"): 25,
}  # fmt: skip
LMVD_COUNTS = {
    ("train", 1, None): 728, ("train", 0, None): 730,
    ("valid", 1, None): 89, ("valid", 0, None): 93,
    ("test", 1, None): 91, ("test", 0, None): 92,
}  # fmt: skip

# Quantile function of D-Vlog lengths, interpolated linearly in log T.
DVLOG_LENGTH_QUANTILES = (
    (0.0, 23), (0.05, 111), (0.25, 312), (0.5, 472),
    (0.75, 766), (0.95, 1374), (0.99, 2308), (1.0, 3968),
)  # fmt: skip
DVLOG_MEAN_LENGTH = 596.0
LMVD_MEAN_LENGTH = 420.0
# Shift of the depressed class on the latent ranking of lengths; 0.3 makes
# depressed vlogs about 1.19x longer on average, as in D-Vlog (640 vs 536 s).
LENGTH_LABEL_SHIFT = 0.3
MIN_LENGTH = 8


@dataclass(frozen=True)
class PlannedVlog:
    id: str
    fold: str
    label: int
    gender: str | None
    length: int  # T, steps of the shorter modality


def scale_counts(counts: dict, n: int) -> dict:
    """Scale a count table to ``n`` items, keeping proportions (largest
    remainders) and, where ``n`` allows, at least one item per cell."""
    total = sum(counts.values())
    if n == total:
        return dict(counts)
    keys = list(counts)
    quotas = np.array([counts[k] * n / total for k in keys])
    scaled = np.floor(quotas).astype(int)
    for i in np.argsort(-(quotas - scaled), kind="stable")[: n - scaled.sum()]:
        scaled[i] += 1
    if n >= len(keys):
        while (scaled == 0).any():
            scaled[np.argmax(scaled)] -= 1
            scaled[np.argmin(scaled)] += 1
    return {k: int(c) for k, c in zip(keys, scaled, strict=True) if c > 0}


def lmvd_ids() -> list[str]:
    """The 1823 LMVD ids in release order: 001..601, 0602..1116, 1117..1423, 1425..1824."""
    ids = [f"{i:03d}" for i in range(1, 602)]
    ids += [f"{i:04d}" for i in range(602, 1117)]
    ids += [str(i) for i in range(1117, 1825) if i != 1424]
    return ids


def sample_lengths(n: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """``(n,)`` lengths from D-Vlog's quantile function, stratified so that a
    sample's quantiles sit close to the published ones, times ``scale``."""
    probs, values = zip(*DVLOG_LENGTH_QUANTILES, strict=True)
    u = (rng.permutation(n) + rng.random(n)) / n
    lengths = np.exp(np.interp(u, probs, np.log(values))) * scale
    return np.maximum(np.round(lengths), MIN_LENGTH).astype(np.int64)


def plan_corpus(
    corpus: str, n: int | None, seed: int, length_scale: float = 1.0, max_n: int | None = None
) -> list[PlannedVlog]:
    """Ids, folds, labels, genders and lengths of a synthetic corpus.

    Args:
        corpus: ``"dvlog"`` or ``"lmvd"``.
        n: number of vlogs; ``None`` for the real corpus size (961 or 1823).
        seed: everything is a deterministic function of it.
        length_scale: multiplies every length (1.0 = the real distribution).
        max_n: the largest ``n`` allowed (default: the real corpus size); a larger
            corpus keeps the real one's shares.
    """
    if corpus == "dvlog":
        counts, scale = DVLOG_COUNTS, length_scale
    elif corpus == "lmvd":
        counts, scale = LMVD_COUNTS, length_scale * LMVD_MEAN_LENGTH / DVLOG_MEAN_LENGTH
    else:
        raise ValueError(f"unknown corpus {corpus!r}; use dvlog or lmvd")
    total = sum(counts.values())
    n = total if n is None else int(n)
    largest = total if max_n is None else max_n
    if not 6 <= n <= largest:
        raise ValueError(f"n must lie in [6, {largest}] for {corpus}, got {n}")
    rng = np.random.default_rng([seed, 0])
    cells = scale_counts(counts, n)
    folds, labels, genders = [], [], []
    for (fold, label, gender), count in cells.items():
        folds += [fold] * count
        labels += [label] * count
        genders += [gender] * count
    order = rng.permutation(n)  # interleave folds and classes over the ids
    folds = [folds[i] for i in order]
    labels = np.asarray(labels)[order]
    genders = [genders[i] for i in order]

    # Depressed vlogs get the longer lengths more often: rank a noisy score.
    lengths = np.sort(sample_lengths(n, rng, scale))
    score = rng.standard_normal(n) + LENGTH_LABEL_SHIFT * labels
    assigned = np.empty(n, dtype=np.int64)
    assigned[np.argsort(score, kind="stable")] = lengths

    if corpus == "dvlog" or n > len(lmvd_ids()):
        ids = [str(i) for i in range(n)]
    else:
        every = lmvd_ids()
        ids = [every[i] for i in np.linspace(0, len(every) - 1, n).round().astype(int)]
    return [
        PlannedVlog(ids[i], folds[i], int(labels[i]), genders[i], int(assigned[i]))
        for i in range(n)
    ]


# Published D-Vlog length statistics, printed beside a synthetic corpus's own.
DVLOG_LENGTH_STATS = {
    "min": 23, "p5": 111, "p25": 312, "median": 472, "mean": 596,
    "p75": 766, "p95": 1374, "p99": 2308, "max": 3968,
}  # fmt: skip


def length_stats(lengths: np.ndarray) -> dict[str, float]:
    """The statistics of :data:`DVLOG_LENGTH_STATS` for ``lengths``."""
    lengths = np.asarray(lengths, dtype=float)
    stats = {"min": lengths.min(), "mean": lengths.mean(), "max": lengths.max()}
    for name, q in (("p5", 5), ("p25", 25), ("median", 50), ("p75", 75), ("p95", 95), ("p99", 99)):
        stats[name] = float(np.percentile(lengths, q))
    return {name: float(stats[name]) for name in DVLOG_LENGTH_STATS}
