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


@dataclass
class Predictions:
    """``probs (N,)`` of depression; ``labels (N,)`` or ``None`` when unlabelled;
    ``gate (N, E)`` expert weights or ``None`` for models without a gate."""

    ids: list[str]
    genders: list[str | None]
    probs: Tensor
    labels: Tensor | None
    gate: Tensor | None
    expert_names: tuple[str, ...] = ()
    threshold: float = 0.5

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
        )

    @property
    def predicted(self) -> Tensor:
        return (self.probs >= self.threshold).long()

    def relied_on(self) -> list[str]:
        """The expert with the largest gate weight, per vlog ('' without a gate)."""
        if self.gate is None:
            return [""] * len(self.ids)
        return [self.expert_names[i] for i in self.gate.argmax(-1).tolist()]

    def to_csv(self, path: str | Path) -> None:
        """Write one row per vlog (atomically): id, gender, [label], probability,
        prediction, [gate_<expert> ..., relied_on]."""
        header = ["id", "gender"] + (["label"] if self.labels is not None else [])
        header += ["probability", "prediction"]
        if self.gate is not None:
            header += [f"gate_{name}" for name in self.expert_names] + ["relied_on"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        relied = self.relied_on()
        for i, vlog_id in enumerate(self.ids):
            row = [vlog_id, self.genders[i] or ""]
            if self.labels is not None:
                row.append(int(self.labels[i]))
            row += [f"{float(self.probs[i]):.6f}", int(self.predicted[i])]
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
