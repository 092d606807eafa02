"""Per-vlog predictions of one fold, and their CSV form."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dynmultidep.atomic import write_text_atomic
from dynmultidep.data.sharding import shard_positions
from dynmultidep.evaluation.metrics import decide


@dataclass
class Predictions:
    """``probs (N,)`` of depression; ``labels (N,)`` or ``None`` when unlabelled;
    ``gate (N, E)`` expert weights or ``None`` for models without a gate.
    ``threshold``: the fixed decision threshold of ``predicted``; ``tuned_threshold``:
    the one tuned on validation for ``tuned_metric`` (``module.threshold=tune``), else
    ``None``."""

    ids: list[str]
    genders: list[str | None]
    probs: Tensor
    labels: Tensor | None
    gate: Tensor | None
    expert_names: tuple[str, ...] = ()
    threshold: float = 0.5
    tuned_threshold: float | None = None
    tuned_metric: str | None = None

    @classmethod
    def concatenate(cls, parts: list[Predictions]) -> Predictions:
        first = parts[0]

        def cat(name):
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else torch.cat(values)

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
        )

    def take(self, index: list[int]) -> Predictions:
        """The predictions of vlogs ``index``, in that order."""
        rows = torch.tensor(index, dtype=torch.long)
        return Predictions(
            ids=[self.ids[i] for i in index],
            genders=[self.genders[i] for i in index],
            probs=self.probs[rows],
            labels=None if self.labels is None else self.labels[rows],
            gate=None if self.gate is None else self.gate[rows],
            expert_names=self.expert_names,
            threshold=self.threshold,
            tuned_threshold=self.tuned_threshold,
            tuned_metric=self.tuned_metric,
        )

    @property
    def predicted(self) -> Tensor:
        return decide(self.probs, self.threshold).long()

    def relied_on(self) -> list[str]:
        """The expert with the largest gate weight, per vlog ('' without a gate)."""
        if self.gate is None:
            return [""] * len(self.ids)
        return [self.expert_names[i] for i in self.gate.argmax(-1).tolist()]

    def to_csv(self, path: str | Path) -> None:
        """Write one row per vlog (atomically): id, gender, [label], probability,
        prediction (at ``threshold``), [prediction_tuned (at ``tuned_threshold``)],
        [gate_<expert> ..., relied_on]."""
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
    ``prediction_tuned`` column where the run tuned its threshold, else ``None``."""

    path: Path
    ids: list[str]
    genders: list[str]
    labels: Tensor
    probs: Tensor
    decisions: Tensor
    tuned: Tensor | None = None

    def take(self, index: list[int]) -> PredictionRows:
        rows = torch.tensor(index, dtype=torch.long)
        return PredictionRows(
            self.path, [self.ids[i] for i in index], [self.genders[i] for i in index],
            self.labels[rows], self.probs[rows], self.decisions[rows],
            None if self.tuned is None else self.tuned[rows],
        )  # fmt: skip

    @classmethod
    def concatenate(cls, parts: list[PredictionRows]) -> PredictionRows:
        tuned = [p.tuned for p in parts]
        return cls(
            parts[0].path, [i for p in parts for i in p.ids], [g for p in parts for g in p.genders],
            torch.cat([p.labels for p in parts]), torch.cat([p.probs for p in parts]),
            torch.cat([p.decisions for p in parts]),
            None if any(t is None for t in tuned) else torch.cat(tuned),
        )  # fmt: skip


def read_predictions(path: str | Path) -> PredictionRows:
    """Read a labelled ``predictions.csv``; :class:`DataError` naming the file and line
    if it is missing, lacks a column, repeats an id or holds a bad value."""
    from dynmultidep.data.records import read_table
    from dynmultidep.errors import DataError

    path = Path(path)
    ids, genders, labels, probs, decisions, tuned = [], [], [], [], [], []
    columns = ("id", "gender", "label", "probability", "prediction")
    header = path.read_text(encoding="utf-8-sig").partition("\n")[0] if path.is_file() else ""
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
