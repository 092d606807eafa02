"""Classification metrics (torchmetrics only), the trivial baseline and bootstrap intervals.

Depression is the positive class. Every metric reads probabilities
``p (N,)`` in [0, 1] and integer labels ``y (N,)``; a vlog is predicted
depressed when ``p > threshold``, torchmetrics' rule, which every decision of the
project follows (:func:`decide`).

``avg4`` is the mean of accuracy, precision, recall and F1, the seed model's
selection criterion. Three F1 scores: ``f1`` of the depressed class (binary),
``macro_f1`` the mean of both classes' F1, ``weighted_f1`` their mean weighted by
each class's number of vlogs (sklearn's ``average='weighted'``, which LMVD's paper
reports). ``ece``: expected calibration error of ``p`` as the probability of
depression: torchmetrics' ``BinaryCalibrationError`` over :data:`ECE_BINS`
equal-width bins (:mod:`dynmultidep.evaluation.calibration` draws its bins).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryCalibrationError,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    MulticlassF1Score,
)

from dynmultidep.evaluation.bootstrap import draw_resamples, percentile_interval, resampled_metrics

AVG4 = ("acc", "precision", "recall", "f1")
METRICS = (*AVG4, "macro_f1", "weighted_f1", "auroc", "ece", "avg4")
ECE_BINS = 10
# metrics of the predicted class, which a decision threshold changes
THRESHOLDED = (*AVG4, "macro_f1", "weighted_f1", "avg4")


def decide(probs: Tensor, threshold: float) -> Tensor:
    """``(N,)`` bool: depressed where ``probs > threshold`` (torchmetrics' rule)."""
    return probs > threshold


class BinaryMacroF1(MulticlassF1Score):
    """Mean of the F1 of both classes (``average="weighted"``: weighted by their
    number of vlogs), from probabilities of the positive one."""

    def __init__(self, threshold: float = 0.5, average: str = "macro", **kwargs):
        super().__init__(num_classes=2, average=average, **kwargs)
        self.threshold = threshold

    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update(decide(preds, self.threshold).long(), target)


def decision_metrics(threshold: float = 0.5, sync: bool = True) -> dict[str, Metric]:
    """Fresh metrics of the decisions ``p > threshold``: every name of :data:`THRESHOLDED`
    but ``avg4``. ``sync`` as in :func:`classification_metrics`."""
    options = {"threshold": threshold, "sync_on_compute": sync}
    return {
        "acc": BinaryAccuracy(**options),
        "precision": BinaryPrecision(**options),
        "recall": BinaryRecall(**options),
        "f1": BinaryF1Score(**options),
        "macro_f1": BinaryMacroF1(**options),
        "weighted_f1": BinaryMacroF1(average="weighted", **options),
    }


def classification_metrics(threshold: float = 0.5, sync: bool = True) -> MetricCollection:
    """A fresh collection; ``compute()`` gives every name of :data:`METRICS` but ``avg4``
    (see :func:`with_avg4`). ``sync``: in distributed runs, ``compute()`` combines the
    states of all ranks (every rank must call it); ``False`` for this rank's data alone."""
    return MetricCollection(
        {
            **decision_metrics(threshold, sync),
            "auroc": BinaryAUROC(sync_on_compute=sync),
            "ece": BinaryCalibrationError(n_bins=ECE_BINS, sync_on_compute=sync),
        }
    )


def with_avg4(values: dict[str, Tensor]) -> dict[str, Tensor]:
    """``values`` plus ``avg4``; keys may carry a prefix such as ``val/``."""
    out = dict(values)
    prefix = next(k[: -len("acc")] for k in values if k.endswith("acc"))
    out[f"{prefix}avg4"] = torch.stack([values[prefix + k] for k in AVG4]).mean()
    return out


def binary_metrics(probs: Tensor, labels: Tensor, threshold: float = 0.5) -> dict[str, float]:
    """All of :data:`METRICS` for one set of predictions (never synchronised across ranks:
    ``probs`` are the whole fold's)."""
    collection = classification_metrics(threshold, sync=False)
    collection.update(probs, labels)
    return {k: float(v) for k, v in with_avg4(collection.compute()).items()}


def all_positive_baseline(labels: Tensor) -> dict[str, float]:
    """The metrics of calling every vlog depressed (the trivial baseline)."""
    return binary_metrics(torch.ones(len(labels)), labels)


def bootstrap_interval(
    probs: Tensor,
    labels: Tensor,
    seed: int,
    resamples: int = 1000,
    level: float = 0.95,
    threshold: float = 0.5,
) -> dict[str, list[float]]:
    """Percentile bootstrap interval of accuracy and F1, resampling vlogs
    (:mod:`dynmultidep.evaluation.bootstrap`).

    Returns ``{"acc": [low, high], "f1": [low, high]}``.
    """
    rows = draw_resamples(len(labels), resamples, seed)
    scores = resampled_metrics(labels[rows], decide(probs, threshold)[rows], names=("acc", "f1"))
    return {name: percentile_interval(values, level) for name, values in scores.items()}
