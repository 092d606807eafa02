"""Stratified, group-aware assignment of vlogs to folds.

One function draws every split of the project: the k folds of a cross-validation
(equal weights) and the validation share carved out of a job's training folds
(weights ``share, 1 - share``). Vlogs are stratified by ``stratum`` (label, and
gender where the corpus has it); vlogs of one group (a speaker, a channel) always
land in the same fold.

Greedy, in the manner of a stratified group k-fold: groups are placed largest
first (ties in a seeded random order), each into the fold where it brings the
per-stratum counts closest to their targets (``weight x stratum total``); ties go
to the fold furthest below its share of vlogs. Without groups every vlog is its
own group and every fold holds its target count of each stratum to within one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence

import numpy as np


def assign_folds(
    ids: Sequence[str],
    strata: Sequence[Hashable],
    weights: Sequence[float],
    seed: int | Sequence[int],
    groups: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """``id -> fold`` (0 .. len(weights) - 1), fold f receiving about ``weights[f]``
    (normalised) of every stratum.

    Args:
        ids: the vlogs to split (unique).
        strata: one stratum per id, e.g. ``(label, gender)``.
        weights: the share of each fold, e.g. ``[1] * k``.
        seed: seeds the order in which equally large groups are placed.
        groups: ``id -> group``; ids absent from it are groups of their own.
    """
    if len(set(ids)) != len(ids):
        raise ValueError("ids to split must be unique")
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    kinds = sorted(set(strata), key=repr)
    column = {s: j for j, s in enumerate(kinds)}
    members: dict[str, list[int]] = defaultdict(list)
    for i, vlog_id in enumerate(ids):
        members[(groups or {}).get(vlog_id, f"\0{vlog_id}")].append(i)
    names = list(members)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    order = sorted(order, key=lambda g: -len(members[names[g]]))  # stable: random among ties
    totals = np.zeros(len(kinds))
    for s in strata:
        totals[column[s]] += 1
    target = w[:, None] * totals[None, :]  # (F, S)
    counts = np.zeros_like(target)
    sizes = np.zeros(len(w))
    fold_of: dict[str, int] = {}
    for g in order:
        rows = members[names[g]]
        add = np.zeros(len(kinds))
        for i in rows:
            add[column[strata[i]]] += 1
        cost = ((counts + add - target) ** 2 - (counts - target) ** 2).sum(axis=1)  # (F,)
        fill = (sizes + len(rows)) / (w * len(ids))
        best = min(range(len(w)), key=lambda f: (round(cost[f], 9), fill[f], f))
        counts[best] += add
        sizes[best] += len(rows)
        for i in rows:
            fold_of[ids[i]] = best
    return fold_of


def check_enough(strata: Sequence[Hashable], labels: Sequence[int], k: int, where: str) -> None:
    """Refuse ``k`` folds when a class has fewer than ``k`` vlogs (some fold would
    lack it); ``where`` names the config key or file in the message."""
    have = Counter(labels)
    for label, name in ((1, "depressed"), (0, "normal")):
        if have[label] < k:
            raise ValueError(
                f"{where}: {k} folds need at least {k} {name} vlogs in the pool, "
                f"it has {have[label]}; lower kfold.k"
            )
