"""Metrics of predicted PHQ-8 scores (``module.task=regression``), the decisions a score
implies, and the trivial baselines.

Inputs are predicted scores ``s (N,)`` and true PHQ-8 totals ``y (N,)`` (0 to 24,
:data:`PHQ8_RANGE`):

* ``rmse``, ``mae``: root mean squared and mean absolute error, in PHQ-8 points;
* ``ccc``: Lin's concordance correlation coefficient with population (``1/N``) moments,
  as AVEC computes it::

      ccc = 2 cov(s, y) / (var(s) + var(y) + (mean(s) - mean(y))^2)

  (torchmetrics' ``ConcordanceCorrCoef`` divides the moments by ``N - 1`` but not the
  squared gap of the means, which gives another number: :class:`PopulationCCC`);
* ``pearson``: Pearson's r (the same under either normalisation).

Decisions: a vlog is depressed when its score is at least :data:`PHQ8_CUTOFF`
(:func:`depressed`), the rule that defines the corpora's binary label, applied alike to
the predicted score (the decision) and the true one (the truth). Their metrics
(:data:`DECISION_METRICS`) are the classifier's, from
:func:`~dynmultidep.evaluation.metrics.decision_metrics` fed the 0/1 decision as a
probability (decided at 0.5, so ``p > 0.5`` is ``s >= 10``); AUROC ranks the vlogs by
the predicted score itself (through :func:`ranking`, an increasing map into (0, 1),
which torchmetrics expects of its inputs). There is no ECE: a score is no probability.

Trivial baselines: every vlog given one constant, the training fold's mean score
(``train_mean``: the constant with the lowest squared error on the training fold) or
its median (``train_median``: the lowest absolute error). A constant has no correlation:
its ``ccc`` is 0 and its ``pearson`` undefined.

Undefined values (Pearson's r of a constant, AUROC of one class) are ``None`` in the
dicts these functions return (``null`` in ``metrics.json``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC
from torchmetrics.regression import (
    ConcordanceCorrCoef,
    MeanAbsoluteError,
    MeanSquaredError,
    PearsonCorrCoef,
)
from torchmetrics.regression.pearson import _final_aggregation
from torchmetrics.utilities.compute import _safe_divide

from dynmultidep.evaluation.bootstrap import draw_resamples, percentile_interval
from dynmultidep.evaluation.metrics import AVG4, decision_metrics, with_avg4

PHQ8_CUTOFF = 10  # PHQ-8 total at which a vlog counts as depressed (Kroenke et al., 2009)
PHQ8_RANGE = (0, 24)
SCORE_METRICS = ("rmse", "mae", "ccc", "pearson")
DECISION_METRICS = (*AVG4, "macro_f1", "weighted_f1", "auroc", "avg4")
REGRESSION_METRICS = (*SCORE_METRICS, *DECISION_METRICS)
RESAMPLED_SCORES = ("rmse", "mae", "ccc")  # bootstrap intervals of a report
BASELINES = ("train_mean", "train_median")
_CONSTANT_WARNING = "The variance of predictions or target is close to zero"


def depressed(scores: Tensor) -> Tensor:
    """``(N,)`` bool: depressed where ``scores >= PHQ8_CUTOFF``."""
    return scores >= PHQ8_CUTOFF


def ranking(scores: Tensor) -> Tensor:
    """``(N,)`` in (0, 1), increasing in ``scores``: what AUROC reads. The scale's width
    keeps scores far outside it apart in float32 (``sigmoid`` saturates past about 17)."""
    low, high = PHQ8_RANGE
    return torch.sigmoid((scores.float() - PHQ8_CUTOFF) / (high - low))


def check_scores(scores: Tensor, where: str) -> None:
    """A one-line :class:`ValueError` naming ``where`` unless every score is a PHQ-8 total."""
    low, high = PHQ8_RANGE
    if scores.isnan().any():
        raise ValueError(f"{where}: {int(scores.isnan().sum())} vlogs have no PHQ-8 score")
    if ((scores < low) | (scores > high)).any():
        raise ValueError(f"{where}: PHQ-8 scores must lie in [{low}, {high}], got "
                         f"{float(scores.min()):g} to {float(scores.max()):g}")  # fmt: skip


class PopulationCCC(ConcordanceCorrCoef):
    """Lin's CCC with population moments (see the module docstring), from torchmetrics'
    running states: ``var_x``, ``var_y`` and ``corr_xy`` are sums of squared (cross-)
    deviations, so ``2 C_xy / (M_x + M_y + N (mean_x - mean_y)^2)``."""

    def compute(self) -> Tensor:
        if self.mean_x.numel() > 1:  # one state per rank after a sync: combine them
            mean_x, mean_y, _, _, var_x, var_y, corr_xy, n = _final_aggregation(
                self.mean_x, self.mean_y, self.max_abs_dev_x, self.max_abs_dev_y,
                self.var_x, self.var_y, self.corr_xy, self.n_total,
            )  # fmt: skip
        else:
            mean_x, mean_y, var_x, var_y = self.mean_x, self.mean_y, self.var_x, self.var_y
            corr_xy, n = self.corr_xy, self.n_total
        gap = (mean_x - mean_y) ** 2
        return _safe_divide(2 * corr_xy, var_x + var_y + n * gap, zero_division=math.nan).squeeze()


class ScoreMetrics(nn.Module):
    """Running metrics of one split over batches: ``update(predicted (B,), true (B,))``;
    ``compute()`` gives every name of :data:`REGRESSION_METRICS` as 0-dim tensors;
    ``reset()``. ``sync``: as in
    :func:`~dynmultidep.evaluation.metrics.classification_metrics`."""

    def __init__(self, sync: bool = True):
        super().__init__()
        self.scores = MetricCollection({
            "rmse": MeanSquaredError(squared=False, sync_on_compute=sync),
            "mae": MeanAbsoluteError(sync_on_compute=sync),
            "ccc": PopulationCCC(sync_on_compute=sync),
            "pearson": PearsonCorrCoef(sync_on_compute=sync),
        })  # fmt: skip
        self.decisions = MetricCollection(decision_metrics(0.5, sync))
        self.auroc = BinaryAUROC(sync_on_compute=sync)

    def update(self, predicted: Tensor, true: Tensor) -> None:
        predicted, true = predicted.float(), true.float()
        truth = depressed(true).long()
        self.scores.update(predicted, true)
        self.decisions.update(depressed(predicted).float(), truth)
        self.auroc.update(ranking(predicted), truth)

    def compute(self) -> dict[str, Tensor]:
        values = {**self.scores.compute(), **self.decisions.compute()}
        return with_avg4({**values, "auroc": self.auroc.compute()})

    def reset(self) -> None:
        for part in (self.scores, self.decisions, self.auroc):
            part.reset()


def _defined(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def regression_metrics(predicted: Tensor, true: Tensor) -> dict[str, float | None]:
    """Every name of :data:`REGRESSION_METRICS` for one set of predictions (never
    synchronised across ranks: they are the whole fold's)."""
    metrics = ScoreMetrics(sync=False)
    metrics.update(predicted, true)
    computed = metrics.compute()
    values = {name: _defined(computed[name]) for name in REGRESSION_METRICS}
    truth = depressed(true)
    if bool(truth.all()) or not bool(truth.any()):
        values["auroc"] = None  # one class only: no ranking to judge
    return values


def resampled_score_metrics(predicted: Tensor, true: Tensor) -> dict[str, Tensor]:
    """Row-wise ``(R,)`` float64 ``rmse``, ``mae`` and ``ccc`` of ``(R, N)`` predicted and
    true scores (the bootstrap's resamples, one per row)."""
    s, y = predicted.double(), true.double()
    error = s - y
    ds, dy = s - s.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    gap = (s.mean(-1) - y.mean(-1)) ** 2
    ccc = 2 * (ds * dy).mean(-1) / ((ds**2).mean(-1) + (dy**2).mean(-1) + gap)
    return {"rmse": error.pow(2).mean(-1).sqrt(), "mae": error.abs().mean(-1), "ccc": ccc}


def score_bootstrap(
    predicted: Tensor, true: Tensor, seed: int, resamples: int = 1000, level: float = 0.95
) -> dict[str, list[float]]:
    """Percentile bootstrap interval of each of :data:`RESAMPLED_SCORES`, resampling
    vlogs (:mod:`dynmultidep.evaluation.bootstrap`)."""
    rows = draw_resamples(len(true), resamples, seed)
    values = resampled_score_metrics(predicted[rows], true[rows])
    return {name: percentile_interval(v, level) for name, v in values.items()}


def baseline_predictions(train_scores: Tensor) -> dict[str, float]:
    """The constant of each of :data:`BASELINES`: the training fold's mean and median
    score (the median halfway between the middle two of an even count)."""
    scores = torch.as_tensor(train_scores, dtype=torch.float64)
    check_scores(scores, "the training fold")
    return {"train_mean": float(scores.mean()), "train_median": float(scores.quantile(0.5))}


def baseline_metrics(predictions: Mapping[str, float | Tensor], true: Tensor) -> dict[str, dict]:
    """name -> ``{"prediction", "metrics"}``: each baseline's metrics on ``true``, its
    prediction a constant or ``(N,)`` per-vlog values (pooled k-fold jobs, each its own
    training fold's constant; ``prediction`` is then ``None``)."""
    out = {}
    for name, value in predictions.items():
        values = torch.as_tensor(value, dtype=torch.float32).expand(true.shape)
        with warnings.catch_warnings():  # a constant has no Pearson's r; None says so
            warnings.filterwarnings("ignore", message=_CONSTANT_WARNING)
            metrics = regression_metrics(values, true)
        constant = isinstance(value, float | int) or torch.as_tensor(value).dim() == 0
        out[name] = {"prediction": float(value) if constant else None, "metrics": metrics}
    return out


def trivial_baselines(train_scores: Tensor, true: Tensor) -> dict[str, dict]:
    """The metrics on ``true (N,)`` of predicting the training fold's mean score, and its
    median, for every vlog (``train_scores (M,)``); see :func:`baseline_metrics`."""
    return baseline_metrics(baseline_predictions(train_scores), true)
