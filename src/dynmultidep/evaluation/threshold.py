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

from dynmultidep.evaluation.metrics import decide

TUNABLE = ("acc", "f1", "macro_f1", "weighted_f1", "avg4")


def _safe(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))


def metrics_at(probs: Tensor, labels: Tensor, thresholds: Tensor) -> dict[str, Tensor]:
    """Every name of :data:`TUNABLE` (plus precision and recall) at each of
    ``thresholds (T,)``, as ``(T,)`` tensors; the definitions of
    :mod:`dynmultidep.evaluation.metrics` (0 where a ratio has no denominator)."""
    predicted = decide(probs[None, :], thresholds[:, None])  # (T, N)
    positive = labels.bool()[None, :]
    tp = (predicted & positive).sum(1).double()
    fp = (predicted & ~positive).sum(1).double()
    fn = (~predicted & positive).sum(1).double()
    tn = (~predicted & ~positive).sum(1).double()
    n = len(labels)
    f1 = _safe(2 * tp, 2 * tp + fp + fn)
    f1_negative = _safe(2 * tn, 2 * tn + fn + fp)
    precision, recall = _safe(tp, tp + fp), _safe(tp, tp + fn)
    acc = (tp + tn) / n
    share = float(labels.sum()) / n
    # a class absent from labels and predictions has no F1 (torchmetrics leaves it out)
    present = torch.stack([(tp + fp + fn) > 0, (tn + fp + fn) > 0]).double()  # (2, T)
    macro = (present[0] * f1 + present[1] * f1_negative) / present.sum(0)
    return {
        "acc": acc,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "macro_f1": macro,
        "weighted_f1": share * f1 + (1 - share) * f1_negative,
        "avg4": (acc + precision + recall + f1) / 4,
    }


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
