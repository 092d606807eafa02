"""The decision threshold that maximises a metric on validation predictions.

``module.threshold: tune`` (conf/train.yaml): after each validation epoch the
classifier tries 0.5 and a threshold between each pair of neighbouring validation
probabilities (and one below and one above them all), deciding ``p > t`` as
everywhere in the project (:func:`~dynmultidep.evaluation.metrics.decide`); it keeps the
one with the best ``module.threshold_metric``, ties going to the one nearest 0.5. The value of
the epoch whose checkpoint is kept travels in that checkpoint, and reports show
the metrics at 0.5 beside those at the tuned threshold.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynmultidep.evaluation.counts import count_metrics
from dynmultidep.evaluation.metrics import decide

TUNABLE = ("acc", "f1", "macro_f1", "weighted_f1", "avg4")


def metrics_at(probs: Tensor, labels: Tensor, thresholds: Tensor) -> dict[str, Tensor]:
    """Every name of :data:`TUNABLE` (plus precision and recall) at each of
    ``thresholds (T,)``, as ``(T,)`` tensors
    (:func:`~dynmultidep.evaluation.counts.count_metrics`)."""
    return count_metrics(decide(probs[None, :], thresholds[:, None]), labels.bool())


def candidates(probs: Tensor) -> Tensor:
    """0.5 and the midpoints of neighbouring distinct ``probs``, with one threshold
    halfway below the smallest and one halfway above the largest (in [0, 1])."""
    values = torch.unique(probs.detach().double().cpu())  # sorted
    edges = torch.cat([values[:1] / 2, (values[1:] + values[:-1]) / 2, (values[-1:] + 1) / 2])
    return torch.unique(torch.cat([edges, torch.tensor([0.5], dtype=torch.double)]))


def tune_threshold(probs: Tensor, labels: Tensor, metric: str = "f1") -> tuple[float, float]:
    """``(threshold, value of metric there)``: the best of :func:`candidates`; ties to
    the one nearest 0.5 (the lower of two equally near)."""
    if metric not in TUNABLE:
        raise ValueError(f"module.threshold_metric must be one of {', '.join(TUNABLE)}, "
                         f"got {metric!r}")  # fmt: skip
    thresholds = candidates(probs)
    values = metrics_at(probs.detach().double().cpu(), labels.detach().cpu(), thresholds)[metric]
    best = values.max()
    tied = thresholds[values >= best - 1e-12]
    chosen = tied[(tied - 0.5).abs().argmin()]
    return float(chosen), float(best)
