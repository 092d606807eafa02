"""The metrics of 0/1 decisions from their confusion counts, row by row: the one
definition behind the threshold sweep (:mod:`dynmultidep.evaluation.threshold`, a row
per threshold) and the bootstrap (:mod:`dynmultidep.evaluation.bootstrap`, a row per
resample). They agree with torchmetrics' (:mod:`dynmultidep.evaluation.metrics`): a
ratio without a denominator is 0, and a class absent from both labels and decisions
has no F1 in the macro mean.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _safe(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))


def count_metrics(predicted: Tensor, positive: Tensor) -> dict[str, Tensor]:
    """``acc``, ``precision``, ``recall``, ``f1``, ``macro_f1``, ``weighted_f1`` and
    ``avg4`` as ``(R,)`` float64 tensors, from ``predicted: (R, N)`` bool decisions
    and ``positive: (R, N)`` or ``(N,)`` bool labels (depressed)."""
    positive = positive.expand_as(predicted)
    tp = (predicted & positive).sum(-1).double()
    fp = (predicted & ~positive).sum(-1).double()
    fn = (~predicted & positive).sum(-1).double()
    tn = (~predicted & ~positive).sum(-1).double()
    n = predicted.shape[-1]
    f1 = _safe(2 * tp, 2 * tp + fp + fn)
    f1_negative = _safe(2 * tn, 2 * tn + fn + fp)
    precision, recall = _safe(tp, tp + fp), _safe(tp, tp + fn)
    acc = (tp + tn) / n
    share = (tp + fn) / n
    # a class absent from labels and decisions has no F1 (torchmetrics leaves it out)
    present = torch.stack([(tp + fp + fn) > 0, (tn + fp + fn) > 0]).double()  # (2, R)
    return {
        "acc": acc,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "macro_f1": (present[0] * f1 + present[1] * f1_negative) / present.sum(0),
        "weighted_f1": share * f1 + (1 - share) * f1_negative,
        "avg4": (acc + precision + recall + f1) / 4,
    }
