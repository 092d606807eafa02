"""Paired comparisons of two models on the same vlogs: bootstrap intervals of the
difference, McNemar's exact test, and a sign-flip test over folds or seeds.

Inputs are aligned: row ``i`` of model A and of model B is the same vlog (of the
same fold or seed). ``labels (N,)`` 0/1, ``decisions_* (N,)`` 0/1 predictions,
``probs_* (N,)`` probabilities of depression; for PHQ-8 regression runs, ``true (N,)``
and ``scores_* (N,)`` true and predicted scores (:data:`SCORE_RESAMPLED`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from dynmultidep.evaluation.bootstrap import (
    RESAMPLED,
    draw_resamples,
    percentile_interval,
    resampled_metrics,
)
from dynmultidep.evaluation.regression import depressed, resampled_score_metrics

SCORE_RESAMPLED = ("rmse", "mae", "ccc", "acc", "f1")  # of regression runs


def point_metrics(labels: Tensor, decisions: Tensor, probs: Tensor) -> dict[str, float]:
    """Accuracy and binary F1 of the decisions, AUROC of the probabilities."""
    return {name: float(value[0]) for name, value in
            resampled_metrics(labels[None], decisions[None], probs[None]).items()}  # fmt: skip


def paired_bootstrap(
    labels: Tensor,
    a: tuple[Tensor, Tensor],
    b: tuple[Tensor, Tensor],
    units: Tensor,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile interval of ``metric(B) - metric(A)`` for each metric of
    :data:`~dynmultidep.evaluation.bootstrap.RESAMPLED`, resampling ``units`` with
    replacement (:mod:`dynmultidep.evaluation.bootstrap`); ``units (U, S)`` holds the rows
    of each unit (a vlog: its S rows across seeds, or its one row), so a vlog's rows are
    drawn together. ``a`` and ``b``: ``(decisions, probs)``."""
    drawn = draw_resamples(len(units), resamples, seed)
    rows = units[drawn].reshape(resamples, -1)  # (R, U*S)
    y = labels[rows]
    first = resampled_metrics(y, a[0][rows], a[1][rows])
    second = resampled_metrics(y, b[0][rows], b[1][rows])
    return {name: percentile_interval(second[name] - first[name], level) for name in RESAMPLED}


def score_metrics(true: Tensor, scores: Tensor) -> dict[str, Tensor]:
    """Row-wise ``(R,)`` metrics of :data:`SCORE_RESAMPLED` of ``(R, N)`` true and
    predicted scores; accuracy and F1 of the decisions ``score >= 10``."""
    decisions = resampled_metrics(depressed(true), depressed(scores), names=("acc", "f1"))
    return {**resampled_score_metrics(scores, true), **decisions}


def point_score_metrics(true: Tensor, scores: Tensor) -> dict[str, float]:
    """:func:`score_metrics` of one set of predictions ``(N,)``."""
    return {
        name: float(value[0]) for name, value in score_metrics(true[None], scores[None]).items()
    }


def paired_score_bootstrap(
    true: Tensor,
    scores_a: Tensor,
    scores_b: Tensor,
    units: Tensor,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float]]:
    """:func:`paired_bootstrap` for predicted scores: the interval of
    ``metric(B) - metric(A)`` for each of :data:`SCORE_RESAMPLED`."""
    drawn = draw_resamples(len(units), resamples, seed)
    rows = units[drawn].reshape(resamples, -1)  # (R, U*S)
    first = score_metrics(true[rows], scores_a[rows])
    second = score_metrics(true[rows], scores_b[rows])
    return {
        name: percentile_interval(second[name] - first[name], level) for name in SCORE_RESAMPLED
    }


def mcnemar(labels: Tensor, decisions_a: Tensor, decisions_b: Tensor) -> dict:
    """McNemar's exact test: of the vlogs exactly one model gets right, does each get
    half? ``p = min(1, 2 P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``."""
    right_a, right_b = decisions_a == labels, decisions_b == labels
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    n = only_a + only_b
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return {"only_a_right": only_a, "only_b_right": only_b, "p": min(1.0, 2 * tail)}


def sign_flip_test(differences: Sequence[float], draws: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip (permutation) test that the mean of
    ``differences`` (one per fold or seed) is zero: the share of sign assignments
    whose mean is at least as far from zero. Exact up to 16 pairs (the observed
    assignment is one of them, so ``p >= 2 / 2**n``); else ``draws`` random
    assignments with the observed one counted, ``(1 + hits) / (1 + draws)``, so
    ``p`` is never 0 (as for any Monte Carlo permutation test)."""
    d = torch.tensor(list(differences), dtype=torch.double)
    observed = float(d.mean().abs())
    if len(d) <= 16:
        signs = torch.tensor(list(itertools.product((1.0, -1.0), repeat=len(d))), dtype=d.dtype)
    else:
        generator = torch.Generator().manual_seed(seed)
        signs = torch.randint(2, (draws, len(d)), generator=generator).double() * 2 - 1
    hits = int(((signs * d).mean(1).abs() >= observed - 1e-12).sum())
    if len(d) <= 16:
        return hits / len(signs)
    return (1 + hits) / (1 + draws)
