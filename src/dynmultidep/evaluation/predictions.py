"""Per-vlog predictions of one fold, and their CSV form.

Binary runs (``module.task=binary``) predict a probability of depression; regression runs
(``module.task=regression``) a PHQ-8 score, which their rows carry beside the true score
(:mod:`dynmultidep.evaluation.regression`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dynmultidep.atomic import write_text_atomic
from dynmultidep.data.records import read_table
from dynmultidep.data.sharding import shard_positions
from dynmultidep.errors import DataError
from dynmultidep.evaluation.metrics import decide
from dynmultidep.evaluation.regression import PHQ8_RANGE, depressed, ranking


def _rows_of(value: Tensor | None, rows: Tensor) -> Tensor | None:
    return None if value is None else value[rows]


def _joined(values: list[Tensor | None]) -> Tensor | None:
    return None if values[0] is None else torch.cat(values)


@dataclass
class Predictions:
    """``probs (N,)`` of depression (binary runs; ``None`` in regression); ``labels (N,)``
    or ``None`` when unlabelled; ``gate (N, E)`` expert weights or ``None`` for models
    without a gate. ``threshold``: the fixed decision threshold of ``predicted``;
    ``tuned_threshold``: the one tuned on validation for ``tuned_metric``
    (``module.threshold=tune``), else ``None``.

    Regression runs: ``scores (N,)`` predicted PHQ-8 scores (clipped to 0..24);
    ``unclipped_scores (N,)`` the model's outputs in PHQ-8 points before clipping (or
    ``None``); ``true_scores (N,)`` the true ones (labelled predictions); ``baselines``:
    the trivial baselines' constant predictions, name -> score (the training fold's mean
    and median)."""

    ids: list[str]
    genders: list[str | None]
    probs: Tensor | None
    labels: Tensor | None
    gate: Tensor | None
    expert_names: tuple[str, ...] = ()
    threshold: float = 0.5
    tuned_threshold: float | None = None
    tuned_metric: str | None = None
    scores: Tensor | None = None
    true_scores: Tensor | None = None
    baselines: dict[str, float] | None = None
    unclipped_scores: Tensor | None = None

    @property
    def regression(self) -> bool:
        return self.scores is not None

    @classmethod
    def concatenate(cls, parts: list[Predictions]) -> Predictions:
        first = parts[0]

        def cat(name):
            return _joined([getattr(p, name) for p in parts])

        return cls(
            ids=[i for p in parts for i in p.ids],
            genders=[g for p in parts for g in p.genders],
            probs=cat("probs"),
            labels=cat("labels"),
            gate=cat("gate"),
            expert_names=first.expert_names,
            threshold=first.threshold,
            tuned_threshold=first.tuned_threshold,
            tuned_metric=first.tuned_metric,
            scores=cat("scores"),
            true_scores=cat("true_scores"),
            baselines=first.baselines,
            unclipped_scores=cat("unclipped_scores"),
        )

    def take(self, index: list[int]) -> Predictions:
        """The predictions of vlogs ``index``, in that order."""
        rows = torch.tensor(index, dtype=torch.long)
        return Predictions(
            ids=[self.ids[i] for i in index],
            genders=[self.genders[i] for i in index],
            probs=_rows_of(self.probs, rows),
            labels=_rows_of(self.labels, rows),
            gate=_rows_of(self.gate, rows),
            expert_names=self.expert_names,
            threshold=self.threshold,
            tuned_threshold=self.tuned_threshold,
            tuned_metric=self.tuned_metric,
            scores=_rows_of(self.scores, rows),
            true_scores=_rows_of(self.true_scores, rows),
            baselines=self.baselines,
            unclipped_scores=_rows_of(self.unclipped_scores, rows),
        )

    @property
    def predicted(self) -> Tensor:
        """``(N,)`` 1 = depressed: ``probs > threshold``, or a predicted score of at least
        the PHQ-8 cut-off."""
        if self.regression:
            return depressed(self.scores).long()
        return decide(self.probs, self.threshold).long()

    @property
    def truth(self) -> Tensor | None:
        """``(N,)`` what the decisions are judged against: the labels, or in regression
        whether the true score reaches the cut-off (``None`` when unlabelled)."""
        if self.regression:
            return None if self.true_scores is None else depressed(self.true_scores).long()
        return self.labels

    @property
    def ranking(self) -> Tensor:
        """``(N,)`` in [0, 1], higher = more likely depressed: what ROC curves read."""
        return ranking(self.scores) if self.regression else self.probs

    def relied_on(self) -> list[str]:
        """The expert with the largest gate weight, per vlog ('' without a gate)."""
        if self.gate is None:
            return [""] * len(self.ids)
        return [self.expert_names[i] for i in self.gate.argmax(-1).tolist()]

    def to_csv(self, path: str | Path) -> None:
        """Write one row per vlog (atomically): id, gender, [label], probability,
        prediction (at ``threshold``), [prediction_tuned (at ``tuned_threshold``)],
        [gate_<expert> ..., relied_on]. Regression: id, gender, [label, score],
        predicted_score (0..24), prediction (predicted score >= the cut-off),
        [unclipped_score], [gate ...]."""
        if self.regression:
            self._scores_csv(path)
            return
        header = ["id", "gender"] + (["label"] if self.labels is not None else [])
        header += ["probability", "prediction"]
        tuned = self.tuned_threshold is not None
        if tuned:
            header.append("prediction_tuned")
        if self.gate is not None:
            header += [f"gate_{name}" for name in self.expert_names] + ["relied_on"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        relied = self.relied_on()
        predicted = self.predicted
        predicted_tuned = decide(self.probs, self.tuned_threshold).long() if tuned else None
        for i, vlog_id in enumerate(self.ids):
            row = [vlog_id, self.genders[i] or ""]
            if self.labels is not None:
                row.append(int(self.labels[i]))
            row += [f"{float(self.probs[i]):.6f}", int(predicted[i])]
            if tuned:
                row.append(int(predicted_tuned[i]))
            if self.gate is not None:
                row += [f"{float(w):.6f}" for w in self.gate[i]] + [relied[i]]
            writer.writerow(row)
        write_text_atomic(path, buffer.getvalue())

    def _scores_csv(self, path: str | Path) -> None:
        labelled = self.labels is not None and self.true_scores is not None
        header = ["id", "gender"] + (["label", "score"] if labelled else [])
        header += ["predicted_score", "prediction"]
        unclipped = self.unclipped_scores
        if unclipped is not None:
            header.append("unclipped_score")
        if self.gate is not None:
            header += [f"gate_{name}" for name in self.expert_names] + ["relied_on"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        relied = self.relied_on()
        predicted = self.predicted
        for i, vlog_id in enumerate(self.ids):
            row = [vlog_id, self.genders[i] or ""]
            if labelled:
                row += [int(self.labels[i]), f"{float(self.true_scores[i]):g}"]
            row += [f"{float(self.scores[i]):.6f}", int(predicted[i])]
            if unclipped is not None:
                row.append(f"{float(unclipped[i]):.6f}")
            if self.gate is not None:
                row += [f"{float(w):.6f}" for w in self.gate[i]] + [relied[i]]
            writer.writerow(row)
        write_text_atomic(path, buffer.getvalue())


def join_shards(parts: list[Predictions | None]) -> Predictions:
    """The whole fold's predictions from those of each rank (``parts[r]``; ``None`` for a
    rank without items), in the fold's order (see :mod:`dynmultidep.data.sharding`)."""
    world = len(parts)
    present = [(r, p) for r, p in enumerate(parts) if p is not None]
    if not present:
        raise ValueError("no rank has predictions to join")
    positions = [i for r, p in present for i in shard_positions(len(p.ids), r, world)]
    joined = Predictions.concatenate([p for _, p in present])
    return joined.take(sorted(range(len(positions)), key=positions.__getitem__))


@dataclass
class PredictionRows:
    """A labelled ``predictions.csv`` read back: ``probs (N,)``, ``labels (N,)`` and
    ``decisions (N,)`` (its ``prediction`` column, 1 = depression); ``tuned (N,)`` its
    ``prediction_tuned`` column where the run tuned its threshold, else ``None``.

    A regression run's: ``scores (N,)`` predicted and ``true_scores (N,)`` true PHQ-8
    scores, ``probs`` ``None``; ``baselines``: name -> ``(N,)`` each trivial baseline's
    prediction for the row's vlog (from the run's ``metrics.json``,
    :func:`read_run_predictions`), else ``None``."""

    path: Path
    ids: list[str]
    genders: list[str]
    labels: Tensor
    probs: Tensor | None
    decisions: Tensor
    tuned: Tensor | None = None
    scores: Tensor | None = None
    true_scores: Tensor | None = None
    baselines: dict[str, Tensor] | None = None

    @property
    def regression(self) -> bool:
        return self.scores is not None

    def take(self, index: list[int]) -> PredictionRows:
        rows = torch.tensor(index, dtype=torch.long)
        return PredictionRows(
            self.path, [self.ids[i] for i in index], [self.genders[i] for i in index],
            self.labels[rows], _rows_of(self.probs, rows), self.decisions[rows],
            _rows_of(self.tuned, rows), _rows_of(self.scores, rows),
            _rows_of(self.true_scores, rows),
            None if self.baselines is None else {k: v[rows] for k, v in self.baselines.items()},
        )  # fmt: skip

    @classmethod
    def concatenate(cls, parts: list[PredictionRows]) -> PredictionRows:
        tasks = {p.regression for p in parts}
        if len(tasks) > 1:
            mixed = next(p for p in parts if p.regression != parts[0].regression)
            raise DataError(mixed.path, f"holds {_task(mixed)} predictions, "
                                        f"{parts[0].path} {_task(parts[0])} ones: they "
                                        "cannot be pooled")  # fmt: skip
        tuned = [p.tuned for p in parts]
        baselines = [p.baselines for p in parts]
        return cls(
            parts[0].path, [i for p in parts for i in p.ids], [g for p in parts for g in p.genders],
            torch.cat([p.labels for p in parts]), _joined([p.probs for p in parts]),
            torch.cat([p.decisions for p in parts]),
            None if any(t is None for t in tuned) else torch.cat(tuned),
            _joined([p.scores for p in parts]), _joined([p.true_scores for p in parts]),
            None if any(b is None for b in baselines)
            else {k: torch.cat([b[k] for b in baselines]) for k in baselines[0]},
        )  # fmt: skip


def _task(rows: PredictionRows) -> str:
    return "PHQ-8 score" if rows.regression else "binary"


def read_run_predictions(run_dir: str | Path) -> PredictionRows:
    """A run's ``predictions.csv`` (:func:`read_predictions`); for a regression run, with
    its trivial baselines' predictions from its ``metrics.json``, where it has one."""
    run_dir = Path(run_dir)
    rows = read_predictions(run_dir / "predictions.csv")
    metrics = run_dir / "metrics.json"
    if rows.regression and metrics.is_file():
        try:
            baselines = json.loads(metrics.read_text()).get("baselines") or {}
            constants = {name: float(b["prediction"]) for name, b in baselines.items()}
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            raise DataError(metrics, "unreadable: its baselines lack a prediction") from None
        if constants:
            n = len(rows.ids)
            rows.baselines = {k: torch.full((n,), v) for k, v in constants.items()}
    return rows


def read_predictions(path: str | Path) -> PredictionRows:
    """Read a labelled ``predictions.csv`` (a binary run's, or a regression run's: those
    have ``score`` and ``predicted_score`` columns); :class:`DataError` naming the file
    and line if it is missing, lacks a column, repeats an id or holds a bad value."""
    path = Path(path)
    header = path.read_text(encoding="utf-8-sig").partition("\n")[0] if path.is_file() else ""
    if "predicted_score" in header.split(","):
        return _read_scores(path)
    ids, genders, labels, probs, decisions, tuned = [], [], [], [], [], []
    columns = ("id", "gender", "label", "probability", "prediction")
    has_tuned = "prediction_tuned" in header.split(",")
    columns += ("prediction_tuned",) if has_tuned else ()
    for line, row in read_table(path, columns):
        try:
            label, prob, decision = (
                int(row["label"]),
                float(row["probability"]),
                int(row["prediction"]),
            )
        except ValueError:
            raise DataError(
                path, f"line {line}: label, probability or prediction is not a number"
            ) from None
        if label not in (0, 1) or decision not in (0, 1) or not 0 <= prob <= 1:
            raise DataError(
                path, f"line {line}: label and prediction must be 0/1, probability in [0, 1]"
            )
        ids.append(row["id"])
        genders.append(row["gender"])
        labels.append(label)
        probs.append(prob)
        decisions.append(decision)
        if has_tuned:
            tuned.append(int(row["prediction_tuned"] == "1"))
    if len(set(ids)) != len(ids):
        raise DataError(path, "lists a vlog more than once")
    if not ids:
        raise DataError(path, "holds no predictions")
    tensor = torch.tensor
    return PredictionRows(path, ids, genders, tensor(labels), tensor(probs), tensor(decisions),
                          tensor(tuned) if has_tuned else None)  # fmt: skip


def _read_scores(path: Path) -> PredictionRows:
    """A regression run's ``predictions.csv``; see :func:`read_predictions`."""
    low, high = PHQ8_RANGE
    ids, genders, labels, true, scores, decisions = [], [], [], [], [], []
    columns = ("id", "gender", "label", "score", "predicted_score", "prediction")
    for line, row in read_table(path, columns):
        try:
            label, score = int(row["label"]), float(row["score"])
            predicted, decision = float(row["predicted_score"]), int(row["prediction"])
        except ValueError:
            raise DataError(path, f"line {line}: label, score, predicted_score or prediction "
                                  "is not a number") from None  # fmt: skip
        if label not in (0, 1) or decision not in (0, 1) or not low <= score <= high:
            raise DataError(path, f"line {line}: label and prediction must be 0/1, score in "
                                  f"[{low}, {high}]")  # fmt: skip
        for values, value in zip((ids, genders, labels, true, scores, decisions),
                                 (row["id"], row["gender"], label, score, predicted, decision),
                                 strict=True):  # fmt: skip
            values.append(value)
    if len(set(ids)) != len(ids):
        raise DataError(path, "lists a vlog more than once")
    if not ids:
        raise DataError(path, "holds no predictions")
    tensor = torch.tensor
    return PredictionRows(path, ids, genders, tensor(labels), None, tensor(decisions),
                          scores=tensor(scores), true_scores=tensor(true))  # fmt: skip
