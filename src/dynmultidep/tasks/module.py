"""The LightningModule: trains and evaluates any model of ``dynmultidep.models``.

A model maps a batch ``audio (B, T, Da)``, ``video (B, T, Dv)``,
``lengths (B,)`` to :class:`~dynmultidep.models.output.ModelOutput`. What its scalar
output ``logits (B,)`` means is the objective's (``task``,
:mod:`dynmultidep.tasks.objectives`): the logit of depression (``binary``) or the PHQ-8
score in standard units of the training fold (``regression``). The loss is the
objective's (binary: ``BCEWithLogits(logits, label)``) plus ``aux_loss``, plus
``model.label_losses(...)`` with the objective's per-vlog losses for models that return
expert logits (DynMultiDep's expert and routing losses).
Metrics are logged per split
as ``{train,val,test}/<name>`` for every name of
:data:`~dynmultidep.evaluation.metrics.METRICS` (accuracy, precision, recall, F1,
macro and weighted F1, AUROC, ECE, ``avg4``), in regression of
:data:`~dynmultidep.evaluation.regression.REGRESSION_METRICS` (RMSE, MAE, CCC,
Pearson's r and the binary metrics of the predicted score); gate
statistics as ``{train,val}/gate_weight_<expert>`` (mean weight) and
``{train,val}/gate_routed_<expert>`` (share of vlogs whose largest weight it
has), and for a fusion-level gate ``{train,val}/fusion_routed_<op>`` (share of
vlogs whose fused expert takes fusion operation ``op``; in eval with a raw-input
hard gate, only vlogs routed to the fused expert count).

A model with a ``held_out_gate`` share (DynMultiDep's gate trained on held-out
losses) has that share of the training fold held out from its experts: the data
module marks those vlogs in every training batch (``held_out``), the main loss
leaves them out, and ``train/held_out_loss_<expert>`` logs each expert's loss on
them (what the gate learns from).

A model with a ``closed_form_part`` (the functionals baseline, DynMultiDep's
closed-form statistics expert) has that part fit once, before the first epoch,
on the training fold (``part.fit_fold``; without the vlogs held out for a gate).
A model that ``fits_in_closed_form`` as a whole (the functionals baseline) then
has one epoch without optimiser steps, which logs its training and validation
metrics. Both closed-form fits are logistic regressions: binary only.

Everything needed to rebuild the module is in its hyper-parameters, saved as
plain containers so that checkpoints load with ``torch.load(weights_only=True)``;
see :mod:`dynmultidep.tasks.checkpoint`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor, nn

from dynmultidep.evaluation.predictions import Predictions, join_shards
from dynmultidep.evaluation.threshold import TUNABLE, tune_threshold
from dynmultidep.models.output import ModelOutput
from dynmultidep.tasks.objectives import make_objective
from dynmultidep.tasks.run.distributed import gather_objects

log = logging.getLogger(__name__)
CLOSED_FORM_WARNINGS = (
    r"`LightningModule.configure_optimizers` returned `None`",
    r"`training_step` returned `None`",
)

THRESHOLD_KEY = "decision_threshold"  # in checkpoints of runs with module.threshold=tune
SCORE_SCALE_KEY = "phq8_scale"  # in checkpoints of regression runs: the training fold's scores


def plain(value: Any) -> Any:
    """Resolved plain containers for a config node (checkpoints hold no OmegaConf objects)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def parameter_groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay for weight matrices only; never for biases, norms, or the SSM's
    ``A_log``/``D`` (tagged ``_no_weight_decay``)."""
    decay, no_decay = [], []
    for param in net.parameters():
        if not param.requires_grad:
            continue
        skip = getattr(param, "_no_weight_decay", False) or param.dim() < 2
        (no_decay if skip else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class DepressionClassifier(L.LightningModule):
    """Depression classifier (or PHQ-8 score regressor) around a model built from config.

    Args:
        model: model config (``_target_`` and keyword arguments).
        optimizer: ``_partial_`` optimizer config; ``weight_decay`` in it
            applies to weight matrices only.
        scheduler: ``_partial_`` scheduler config taking the optimizer, stepped
            per epoch; ``None`` for a constant learning rate.
        pos_weight: weight positive vlogs by ``negatives / positives`` of the
            training fold in the loss.
        threshold: probability above which a vlog is predicted depressed, or ``"tune"``:
            metrics and checkpoint selection stay at 0.5, and after each validation
            epoch the threshold that maximises ``threshold_metric`` on the validation
            fold is chosen (:mod:`dynmultidep.evaluation.threshold`); the kept
            checkpoint holds its epoch's value and test reports show both.
        threshold_metric: what ``threshold="tune"`` maximises (``f1``, ``macro_f1``,
            ``weighted_f1``, ``acc``, ``avg4``).
        task: ``binary`` or ``regression`` (the PHQ-8 score; needs a corpus with scores
            and refuses ``pos_weight``, a threshold other than 0.5, and models fit in
            closed form), see :mod:`dynmultidep.tasks.objectives`.
        regression_loss: ``mse``, ``huber`` or ``ccc`` (regression only).
        run_config: the whole run's resolved config, written into checkpoints
            (not a hyper-parameter: loggers do not need it twice).
    """

    def __init__(
        self,
        model: Mapping,
        optimizer: Mapping,
        scheduler: Mapping | None = None,
        pos_weight: bool = False,
        threshold: float | str = 0.5,
        threshold_metric: str = "f1",
        task: str = "binary",
        regression_loss: str = "mse",
        run_config: Mapping | None = None,
    ):
        super().__init__()
        self.tune = threshold == "tune"
        if isinstance(threshold, str) and not self.tune:
            raise ValueError(f"module.threshold must be a probability or 'tune', got {threshold!r}")
        if self.tune and threshold_metric not in TUNABLE:
            raise ValueError(f"module.threshold_metric must be one of {', '.join(TUNABLE)}, "
                             f"got {threshold_metric!r}")  # fmt: skip
        self.objective = make_objective(task, regression_loss, threshold, bool(pos_weight))
        self.save_hyperparameters(
            {
                "model": plain(model),
                "optimizer": plain(optimizer),
                "scheduler": plain(scheduler),
                "pos_weight": bool(pos_weight),
                "threshold": threshold if self.tune else float(threshold),
                "threshold_metric": threshold_metric,
                "task": task,
                "regression_loss": regression_loss,
            }
        )
        # metrics (and so checkpoint selection) at a fixed threshold, 0.5 when tuning
        fixed = 0.5 if self.tune else float(threshold)
        self.fixed_threshold = fixed
        self.tuned_threshold: float | None = None  # set after validation epochs when tuning
        self._val_parts: list[tuple[Tensor, Tensor]] = []
        self.run_config = plain(run_config)
        self.net = instantiate(self.hparams.model, _convert_="all")
        self.expert_names: tuple[str, ...] = tuple(getattr(self.net, "expert_names", ()))
        self.train_metrics = self.objective.metrics()
        self.val_metrics = self.objective.metrics()
        self.test_metrics = self.objective.metrics()
        self._test_parts: list[Predictions] = []
        self.test_predictions: Predictions | None = None
        self.closed_form = bool(getattr(self.net, "fits_in_closed_form", False))
        if task == "regression" and getattr(self.net, "closed_form_part", None) is not None:
            raise ValueError(f"module.task=regression: {closed_form_what(self.net)}")
        self.closed_form_fit: dict | None = None  # what fit_fold chose, for metrics.json
        if self.closed_form:  # no optimiser and no steps, on purpose: Lightning need not say so
            for message in CLOSED_FORM_WARNINGS:
                warnings.filterwarnings("ignore", message=message)

    @property
    def pos_weight(self) -> Tensor | None:
        """Negatives / positives of the training fold (binary, ``pos_weight``), set in
        setup(); not a buffer: it only shapes the training loss, not the model."""
        return getattr(self.objective, "pos_weight", None)

    # --------------------------------------------------------------- forward
    def forward(self, batch: Mapping[str, Tensor]) -> ModelOutput:
        return self.net(batch["audio"], batch["video"], batch["lengths"])

    def predictions(self, batch: Mapping, out: ModelOutput, labelled: bool = True) -> Predictions:
        """One batch's predictions, on the CPU."""
        labels = batch.get("label") if labelled else None
        return Predictions(
            ids=list(batch["id"]),
            genders=list(batch["gender"]),
            labels=None if labels is None else labels.detach().cpu(),
            gate=None if out.gate is None else out.gate.detach().float().cpu(),
            expert_names=self.expert_names,
            threshold=self.fixed_threshold,
            tuned_threshold=self.tuned_threshold,
            tuned_metric=self.hparams.threshold_metric if self.tune else None,
            **self.objective.predicted(out.logits, batch, labelled),
        )

    # ----------------------------------------------------------------- steps
    def setup(self, stage: str) -> None:
        if stage == "fit" and (self.hparams.pos_weight or self.objective.task == "regression"):
            datamodule = self._datamodule(f"module.task={self.objective.task}")
            self.objective.fit(datamodule.fold("train"), datamodule.spec.name)
        share = float(getattr(self.net, "held_out_gate", 0.0))
        if stage == "fit" and share > 0:
            datamodule = self._datamodule("model.held_out_gate")
            held = datamodule.hold_out(share)
            log.info("%d of %d training vlogs held out from the experts for the gate (%g)",
                     len(held), len(datamodule.fold("train")), share)  # fmt: skip

    def _datamodule(self, option: str):
        """The trainer's data module, which ``option`` needs."""
        datamodule = self.trainer.datamodule
        if datamodule is None:
            raise ValueError(f"{option} needs the data module: trainer.fit(module, "
                             "datamodule=...), not bare dataloaders")  # fmt: skip
        return datamodule

    def on_fit_start(self) -> None:
        part = getattr(self.net, "closed_form_part", None)
        if part is not None and not bool(part.fitted):
            self._fit_closed_form(part)

    @torch.no_grad()
    def _fit_closed_form(self, part: nn.Module) -> None:
        """Fit ``part`` to the functionals of the training fold, less any vlogs held out
        for a gate (every rank gathers all of them and fits the same model)."""
        datamodule = self._datamodule("a model fit in closed form")
        held_out = getattr(datamodule, "held_out", None) or frozenset()
        parts = []
        for batch in datamodule.fold_dataloader("train"):
            keep = torch.tensor([i not in held_out for i in batch["id"]])
            batch = self.transfer_batch_to_device(batch, self.device, 0)
            features = part.features(batch["audio"], batch["video"], batch["lengths"])
            parts.append((features.cpu()[keep], batch["label"].cpu()[keep]))
        if self.trainer.world_size > 1:
            parts = [p for rank in gather_objects(parts) for p in rank]
        features, labels = (torch.cat(column) for column in zip(*parts, strict=True))
        weights = None
        if self.pos_weight is not None:
            weights = torch.where(labels == 1, self.pos_weight, torch.ones(()))
        seed = int((self.run_config or {}).get("seed") or 0)
        self.closed_form_fit = part.fit_fold(features, labels.float(), weights, seed)
        folds = self.closed_form_fit["inner_folds"]
        how = (
            f"chosen by {folds}-fold inner cross-validation"
            if folds
            else "the middle candidate: a class has under 2 training vlogs to cross-validate"
        )
        log.info(
            "%s fit in closed form on %d training vlogs: L2 penalty %g (%s)",
            type(part).__name__,
            len(labels),
            self.closed_form_fit["penalty"],
            how,
        )
        # fmt: skip

    def _step(self, batch: Mapping, split: str) -> tuple[Tensor, ModelOutput]:
        out = self(batch)
        targets = self.objective.targets(batch)
        held_out = batch.get("held_out") if split == "train" else None
        # the experts and the classifier never learn from the gate's vlogs
        rows = None if held_out is None else ~held_out
        loss = self.objective.loss(out.logits, targets, rows) + out.aux_loss
        if held_out is not None:
            self._log_held_out(out, targets, held_out)
        if out.expert_logits is not None:
            extra = {} if held_out is None else {"held_out": held_out}
            loss = loss + self.net.label_losses(
                out, targets, path_losses=self.objective.path_losses, **extra
            )
        size = len(targets)
        on_step = split == "train"
        self.log(f"{split}/loss", loss, on_step=on_step, on_epoch=True, batch_size=size,
                 prog_bar=split != "test", sync_dist=not on_step)  # fmt: skip
        self.objective.update(self._metrics(split), out.logits, batch)
        if out.gate is not None and split != "test":
            self._log_gate(out.gate.detach(), split, size)
        if out.fusion_gate is not None and split != "test":
            self._log_fusion_gate(out.fusion_gate.detach(), split, size)
        return loss, out

    def _log_held_out(self, out: ModelOutput, targets: Tensor, held_out: Tensor) -> None:
        """Each expert's loss on the training vlogs held out from it."""
        rows = int(held_out.sum())
        if out.expert_logits is None or rows == 0:
            return
        losses = self.objective.path_losses(out.expert_logits[held_out].detach(),
                                            targets[held_out])  # fmt: skip
        losses = losses.mean(0)
        for name, value in zip(self.expert_names, losses, strict=True):
            self.log(f"train/held_out_loss_{name}", value, on_step=False, on_epoch=True,
                     batch_size=rows)  # fmt: skip

    def _log_gate(self, gate: Tensor, split: str, size: int) -> None:
        routed = F.one_hot(gate.argmax(-1), gate.shape[-1]).float()
        for e, name in enumerate(self.expert_names):
            for stat, values in (("weight", gate[:, e]), ("routed", routed[:, e])):
                self.log(f"{split}/gate_{stat}_{name}", values.float().mean(), on_step=False,
                         on_epoch=True, batch_size=size, sync_dist=True)  # fmt: skip

    def _log_fusion_gate(self, weights: Tensor, split: str, size: int) -> None:
        used = (weights.sum(-1) > 0).float()  # zero rows: the sample took another expert
        routed = F.one_hot(weights.argmax(-1), weights.shape[-1]).float() * used[:, None]
        for k, name in enumerate(self.net.fusion.op_names):
            self.log(f"{split}/fusion_routed_{name}", routed[:, k].mean(), on_step=False,
                     on_epoch=True, batch_size=size, sync_dist=True)  # fmt: skip

    def training_step(self, batch: Mapping, batch_idx: int) -> Tensor | None:
        loss = self._step(batch, "train")[0]
        return None if self.closed_form else loss  # None: no backward, no optimiser step

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        _, out = self._step(batch, "val")
        if self.tune:
            probs = torch.sigmoid(out.logits.detach().float()).cpu()
            self._val_parts.append((probs, batch["label"].detach().cpu()))

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        _, out = self._step(batch, "test")
        self._test_parts.append(self.predictions(batch, out))

    def predict_step(self, batch: Mapping, batch_idx: int) -> Predictions:
        return self.predictions(batch, self(batch), labelled=False)

    def _metrics(self, split: str):
        return getattr(self, f"{split}_metrics")

    def _log_metrics(self, split: str) -> None:
        collection = self._metrics(split)
        self.log_dict(self.objective.compute(collection, split), prog_bar=split == "val")
        collection.reset()

    def on_train_epoch_start(self) -> None:
        if hasattr(self.net, "start_epoch"):  # models with a schedule of their own
            for name, value in self.net.start_epoch(self.current_epoch).items():
                self.log(name, value, on_step=False, on_epoch=True)
        if self.closed_form:
            return
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("train/lr", lr, on_step=False, on_epoch=True)

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train")
        if self.closed_form:
            self.log("train/l2_penalty", self.closed_form_fit["penalty"] if self.closed_form_fit
                     else float("nan"))  # fmt: skip
            self.trainer.should_stop = True  # fit already: one epoch logs its metrics

    def on_validation_epoch_start(self) -> None:
        self._val_parts = []

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")
        parts, self._val_parts = self._val_parts, []
        if not self.tune:
            return
        if self.trainer.world_size > 1:  # every rank (even one without items) tunes on all
            parts = [p for rank in gather_objects(parts) for p in rank]
        if parts:
            probs, labels = (torch.cat(column) for column in zip(*parts, strict=True))
            self.tuned_threshold, _ = tune_threshold(probs, labels, self.hparams.threshold_metric)
            self.log("val/threshold", self.tuned_threshold)

    def on_test_epoch_start(self) -> None:
        self._test_parts = []

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")  # torchmetrics syncs the states of all ranks
        local = Predictions.concatenate(self._test_parts) if self._test_parts else None
        self._test_parts = []
        if self.trainer.world_size > 1:
            self.test_predictions = join_shards(gather_objects(local))
        else:
            self.test_predictions = local

    # ------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> dict | None:
        if self.closed_form:
            return None  # fit by fit_fold, never by an optimiser
        config = dict(self.hparams.optimizer)
        weight_decay = config.pop("weight_decay", 0.0)
        optimizer = instantiate(config)(parameter_groups(self.net, weight_decay))
        if self.hparams.scheduler is None:
            return {"optimizer": optimizer}
        scheduler = instantiate(self.hparams.scheduler)(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    # ----------------------------------------------------------- checkpoint
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config
        if self.tuned_threshold is not None:
            checkpoint[THRESHOLD_KEY] = {"value": self.tuned_threshold, "chosen_on": "valid",
                                         "metric": self.hparams.threshold_metric}  # fmt: skip
        state = self.objective.state()
        if state is not None:
            checkpoint[SCORE_SCALE_KEY] = state

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.tuned_threshold = (checkpoint.get(THRESHOLD_KEY) or {}).get("value")
        if self.objective.task == "regression":
            self.objective.load_state(checkpoint.get(SCORE_SCALE_KEY))


def closed_form_what(net: nn.Module) -> str:
    """Why ``net`` cannot regress scores: what of it is a logistic regression fit in
    closed form, and what to choose instead."""
    if getattr(net, "fits_in_closed_form", False):
        return (f"model {type(net).__name__} is a logistic regression fit in closed form, for "
                "the binary task only; choose a model trained by gradient (e.g. "
                "model=temporal_mean or model=late_fusion)")  # fmt: skip
    return (f"{type(net).__name__}'s statistics expert is a logistic regression fit in closed "
            "form (model.stats_fit=closed_form), for the binary task only; set "
            "model.stats_fit=gradient")  # fmt: skip
