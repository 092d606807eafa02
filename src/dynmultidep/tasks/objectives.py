"""What the LightningModule learns (``module.task``): the binary objective or the PHQ-8
regression objective. Each turns the model's scalar output ``out.logits (B,)`` into the
loss, the running metrics and the predictions; :mod:`dynmultidep.tasks.module` holds one.

``binary`` (the default): the output is the logit of depression. Loss
``BCEWithLogits(output, label)`` (``pos_weight``: depressed vlogs weighted by
negatives / positives of the training fold); metrics of ``sigmoid(output)``
(:mod:`dynmultidep.evaluation.metrics`).

``regression``: the output is the PHQ-8 total in standard units of the training fold,
``score = mean + std * output`` (``mean`` and population ``std`` of the training fold's
scores, fit in ``setup`` and kept in checkpoints, :class:`ScoreScale`), clipped to the
scale's 0..24 wherever a score is reported or measured (the metrics, predictions). The
loss compares the output itself (its gradient never vanishes outside the scale) with the
standardised true score ``z = (y - mean) / std``:

* ``mse``: mean squared error;
* ``huber``: Huber loss with ``delta`` 1 (one training-fold std, about 5 PHQ-8 points):
  squared near the target, linear beyond, so a few far-off vlogs weigh less;
* ``ccc``: ``1 - CCC(output, z)`` over the batch (Lin's, population moments), the metric
  AVEC ranks by; it is the same on scores as in standard units (both move by one affine
  map), and it needs batches of two or more vlogs.

DynMultiDep's expert and routing losses (``expert_loss``, ``gate_loss``,
``held_out_gate``) need a loss per vlog and path (:meth:`path_losses`): the squared error
for ``mse`` and ``ccc`` (a correlation has no per-vlog value), the Huber loss for
``huber``. Metrics: :mod:`dynmultidep.evaluation.regression` (RMSE, MAE, CCC, Pearson's r,
and the binary metrics of ``score >= 10``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmultidep.evaluation.metrics import classification_metrics, with_avg4
from dynmultidep.evaluation.regression import PHQ8_RANGE, ScoreMetrics, baseline_predictions
from dynmultidep.models.dynmultidep import own_losses, rows_mean

TASKS = ("binary", "regression")
REGRESSION_LOSSES = ("mse", "huber", "ccc")
SCORE_CORPORA = "dataset=daic_woz or dataset=edaic (or their synthetic twins)"
CCC_EPS = 1e-8  # keeps 1 - CCC finite on a batch whose outputs and targets are all equal


class BinaryObjective:
    """Depression as a class; see the module docstring."""

    task = "binary"

    def __init__(self, threshold: float, pos_weight: bool):
        self.threshold = threshold
        self.weigh_positives = pos_weight
        self.pos_weight: Tensor | None = None  # negatives / positives, set by fit()

    def fit(self, vlogs: Sequence, corpus: str) -> None:
        if not self.weigh_positives:
            return
        labels = torch.tensor([v.label for v in vlogs])
        positives = int(labels.sum())
        if positives == 0 or positives == len(labels):
            raise ValueError("pos_weight needs both classes in the training fold")
        self.pos_weight = torch.tensor((len(labels) - positives) / positives)

    def _pos_weight(self, device: torch.device) -> Tensor | None:
        return None if self.pos_weight is None else self.pos_weight.to(device)

    def targets(self, batch: Mapping) -> Tensor:
        return batch["label"]

    def loss(self, outputs: Tensor, targets: Tensor, rows: Tensor | None) -> Tensor:
        """Mean BCE of ``outputs (B,)`` over ``rows (B,)`` (bool; None: all)."""
        bce = F.binary_cross_entropy_with_logits(
            outputs.float(), targets.float(), pos_weight=self._pos_weight(outputs.device),
            reduction="none",
        )  # fmt: skip
        return bce.mean() if rows is None else rows_mean(bce, rows)

    def path_losses(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Each path's BCE per vlog: ``outputs (B, K), targets (B,) -> (B, K)``."""
        return own_losses(outputs, targets, self._pos_weight(outputs.device))

    def metrics(self) -> nn.Module:
        return classification_metrics(self.threshold)

    def update(self, metrics: nn.Module, outputs: Tensor, batch: Mapping) -> None:
        metrics.update(torch.sigmoid(outputs.detach().float()), batch["label"])

    def compute(self, metrics: nn.Module, split: str) -> dict[str, Tensor]:
        return with_avg4({f"{split}/{k}": v for k, v in metrics.compute().items()})

    def predicted(self, outputs: Tensor, batch: Mapping, labelled: bool) -> dict:
        """The task's fields of :class:`~dynmultidep.evaluation.predictions.Predictions`."""
        return {"probs": torch.sigmoid(outputs.detach().float()).cpu()}

    def state(self) -> dict | None:
        return None

    def load_state(self, state: Mapping | None) -> None:
        pass


@dataclass(frozen=True)
class ScoreScale:
    """The training fold's PHQ-8 scores: ``mean`` and population ``std`` (the standard
    units of the model's output), ``median`` (a trivial baseline) and their count."""

    mean: float
    std: float
    median: float
    vlogs: int

    @classmethod
    def of(cls, scores: Sequence[float]) -> ScoreScale:
        values = torch.tensor(scores, dtype=torch.float64)
        constants = baseline_predictions(values)
        std = float(values.std(correction=0))
        if not std > 0:
            raise ValueError(f"module.task=regression: every training vlog has PHQ-8 score "
                             f"{float(values[0]):g}; there is nothing to regress")  # fmt: skip
        return cls(constants["train_mean"], std, constants["train_median"], len(values))

    def scores(self, outputs: Tensor) -> Tensor:
        """The predicted PHQ-8 scores, clipped to the scale (0..24): what is reported."""
        return self.unclipped(outputs).clamp(*PHQ8_RANGE)

    def unclipped(self, outputs: Tensor) -> Tensor:
        """``mean + std * outputs``: the model's output in PHQ-8 points."""
        return self.mean + self.std * outputs

    def standardise(self, scores: Tensor) -> Tensor:
        return (scores - self.mean) / self.std


def concordance(x: Tensor, y: Tensor, rows: Tensor | None = None) -> Tensor:
    """Lin's CCC of ``x (B,)`` and ``y (B,)`` over ``rows (B,)`` (bool; None: all), with
    population moments, differentiable."""
    w = torch.ones_like(x) if rows is None else rows.to(x.dtype)
    n = w.sum().clamp_min(1)
    mx, my = (w * x).sum() / n, (w * y).sum() / n
    dx, dy = x - mx, y - my
    cov = (w * dx * dy).sum() / n
    vx, vy = (w * dx**2).sum() / n, (w * dy**2).sum() / n
    return 2 * cov / (vx + vy + (mx - my) ** 2 + CCC_EPS)


class RegressionObjective:
    """The PHQ-8 total score; see the module docstring."""

    task = "regression"

    def __init__(self, loss: str):
        if loss not in REGRESSION_LOSSES:
            raise ValueError(f"module.regression_loss must be one of "
                             f"{', '.join(REGRESSION_LOSSES)}, got {loss!r}")  # fmt: skip
        self.loss_name = loss
        self.scale: ScoreScale | None = None  # fit() or load_state()

    def fit(self, vlogs: Sequence, corpus: str) -> None:
        missing = sum(v.score is None for v in vlogs)
        if missing:
            which = "has no PHQ-8 scores" if missing == len(vlogs) else (
                f"has no PHQ-8 score for {missing} of {len(vlogs)} training vlogs")  # fmt: skip
            raise ValueError(f"module.task=regression: corpus {corpus!r} {which}; "
                             f"regression needs {SCORE_CORPORA}")  # fmt: skip
        self.scale = ScoreScale.of([float(v.score) for v in vlogs])

    def _scale(self) -> ScoreScale:
        if self.scale is None:
            raise ValueError("module.task=regression: no training-fold score statistics; "
                             "fit the module on a training fold or load them from its "
                             "checkpoint")  # fmt: skip
        return self.scale

    def targets(self, batch: Mapping) -> Tensor:
        """The standardised true scores ``(B,)``."""
        true = batch["score"]
        missing = true.isnan()
        if missing.any():
            ids = [batch["id"][i] for i in missing.nonzero().flatten().tolist()]
            shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
            raise ValueError(f"module.task=regression: vlogs {shown} have no PHQ-8 score; "
                             f"regression needs {SCORE_CORPORA}")  # fmt: skip
        return self._scale().standardise(true.float())

    def loss(self, outputs: Tensor, targets: Tensor, rows: Tensor | None) -> Tensor:
        """The regression loss of ``outputs (B,)`` over ``rows (B,)`` (bool; None: all)."""
        outputs = outputs.float()
        if self.loss_name == "ccc":
            return 1 - concordance(outputs, targets, rows)
        per_vlog = self.path_losses(outputs[:, None], targets)[:, 0]
        return per_vlog.mean() if rows is None else rows_mean(per_vlog, rows)

    def path_losses(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Each path's loss per vlog: ``outputs (B, K), targets (B,) -> (B, K)``: Huber's
        for ``huber``, else the squared error."""
        outputs = outputs.float()
        targets = targets.float()[:, None].expand_as(outputs)
        if self.loss_name == "huber":
            return F.huber_loss(outputs, targets, reduction="none", delta=1.0)
        return (outputs - targets) ** 2

    def metrics(self) -> nn.Module:
        return ScoreMetrics()

    def update(self, metrics: nn.Module, outputs: Tensor, batch: Mapping) -> None:
        metrics.update(self._scale().scores(outputs.detach().float()), batch["score"])

    def compute(self, metrics: nn.Module, split: str) -> dict[str, Tensor]:
        return {f"{split}/{k}": v for k, v in metrics.compute().items()}

    def predicted(self, outputs: Tensor, batch: Mapping, labelled: bool) -> dict:
        """The task's fields of :class:`~dynmultidep.evaluation.predictions.Predictions`."""
        scale = self._scale()
        true = batch.get("score") if labelled else None
        outputs = outputs.detach().float()
        return {
            "probs": None,
            "scores": scale.scores(outputs).cpu(),
            "unclipped_scores": scale.unclipped(outputs).cpu(),
            "true_scores": None if true is None else true.detach().float().cpu(),
            "baselines": {"train_mean": scale.mean, "train_median": scale.median},
        }

    def state(self) -> dict | None:
        return None if self.scale is None else asdict(self.scale)

    def load_state(self, state: Mapping | None) -> None:
        if state is None:
            raise ValueError("module.task=regression, but the checkpoint holds no training-fold "
                             "PHQ-8 score statistics")  # fmt: skip
        self.scale = ScoreScale(**state)


def make_objective(
    task: str, regression_loss: str, threshold: float | str, pos_weight: bool
) -> BinaryObjective | RegressionObjective:
    """The objective of ``module.task``; refuses the binary-only options in regression."""
    if task not in TASKS:
        raise ValueError(f"module.task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "binary":
        return BinaryObjective(0.5 if threshold == "tune" else float(threshold), pos_weight)
    if pos_weight:
        raise ValueError("module.pos_weight weights depressed vlogs in the binary loss; "
                         "it does not apply to module.task=regression")  # fmt: skip
    if threshold != 0.5:
        raise ValueError(f"module.threshold={threshold} applies to the binary task's "
                         "probabilities; module.task=regression calls a vlog depressed at a "
                         "predicted PHQ-8 score of 10 or more")  # fmt: skip
    return RegressionObjective(regression_loss)
