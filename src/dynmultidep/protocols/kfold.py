"""k-fold cross-validation over a corpus's vlogs (``kfold:`` in conf/train.yaml).

``python src/train.py -m sweep=kfold`` runs one job per fold. Job ``f``:

* **pool**: the vlogs the folds are drawn from, ``all`` of the corpus or
  ``train_valid`` (its official train and valid folds; the official test fold is
  never read);
* **test** (reported): fold ``f`` of the pool;
* **valid** (checkpoint selection): a stratified, seeded ``valid_share`` of the
  other k-1 folds, drawn anew per job;
* **train**: the rest of the other k-1 folds.

Folds are stratified by label and, where the corpus has it, gender, and keep the
vlogs of one group together (:mod:`dynmultidep.protocols.folds`): the sessions of one
participant (``Record.participant``) and the vlogs ``kfold.groups`` (a CSV
``id,group``) puts in one group; the same ``(pool, k, seed, groups)`` always
gives the same folds, which the sweep writes to ``folds.csv`` (``id,fold``).

``select_on_test: true`` is the common but optimistic protocol: the job trains on
all k-1 folds and selects its checkpoint on the fold it reports. Its numbers are
labelled :data:`OPTIMISTIC` wherever they appear.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from dynmultidep.atomic import write_text_atomic
from dynmultidep.data.records import Record, read_table
from dynmultidep.errors import DataError
from dynmultidep.protocols.folds import assign_folds, check_enough

POOLS = ("all", "train_valid")
HONEST = "honest: checkpoint selected on a validation share of the training folds"
OPTIMISTIC = "optimistic: checkpoint selected on the reported fold"
FOLDS_FILE = "folds.csv"  # in the sweep directory: id,fold
SPLIT_FILE = "split.csv"  # in each job's directory: id,role (train | valid | test)


@dataclass(frozen=True)
class KFold:
    """The ``kfold`` config node; ``fold=None`` keeps the corpus's own folds."""

    fold: int | None = None
    k: int = 10
    seed: int = 0
    pool: str = "all"
    groups: str | None = None
    valid_share: float = 0.1
    select_on_test: bool = False

    @classmethod
    def from_config(cls, node: Mapping | None) -> KFold:
        kfold = cls(**dict(node or {}))
        if kfold.pool not in POOLS:
            raise ValueError(f"kfold.pool must be one of {', '.join(POOLS)}, got {kfold.pool!r}")
        if kfold.k < 2:
            raise ValueError(f"kfold.k must be at least 2, got {kfold.k}")
        if kfold.fold is not None and not 0 <= kfold.fold < kfold.k:
            raise ValueError(f"kfold.fold must lie in 0..{kfold.k - 1}, got {kfold.fold}")
        if not 0 < kfold.valid_share < 1:
            raise ValueError(f"kfold.valid_share must lie in (0, 1), got {kfold.valid_share}")
        return kfold

    @property
    def enabled(self) -> bool:
        return self.fold is not None

    @property
    def protocol(self) -> str:
        return OPTIMISTIC if self.select_on_test else HONEST


def pool_of(records: Sequence[Record], pool: str) -> list[Record]:
    """The records folds are drawn from."""
    if pool == "all":
        return list(records)
    return [r for r in records if r.fold in ("train", "valid")]


def stratum(record: Record) -> tuple[int, str]:
    return record.label, record.gender or ""


def read_groups(path: str | Path, known: set[str]) -> dict[str, str]:
    """``id -> group`` from a CSV with the header ``id,group``; every id must be one of
    ``known`` (the corpus's) and listed once."""
    path = Path(path)
    groups: dict[str, str] = {}
    for line, row in read_table(path, ("id", "group")):
        if not row["id"] or not row["group"]:
            raise DataError(path, f"line {line}: empty id or group")
        if row["id"] in groups:
            raise DataError(path, f"line {line}: id {row['id']!r} is listed more than once")
        groups[row["id"]] = row["group"]
    unknown = sorted(set(groups) - known)
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:3])
        raise DataError(path, f"names {len(unknown)} id(s) not in the corpus (e.g. {shown})")
    return groups


def linked_groups(records: Sequence[Record], groups: Mapping[str, str]) -> dict[str, str]:
    """``id -> group`` of the vlogs that must share a fold: ``groups`` (the groups file's)
    joined with the sessions of each participant (``Record.participant``), and whatever
    either links them to. A group keeps the file's name; an id in neither is left out (a
    group of its own)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        while node in parent:
            node = parent[node]
        return node

    def nodes(record: Record) -> list[tuple[str, str]]:
        found = [("group", groups[record.id])] if record.id in groups else []
        return found + ([("participant", record.participant)] if record.participant else [])

    for record in records:
        found = nodes(record)
        for node in found[1:]:  # the participant joins the file's group: file groups stay roots
            ours, theirs = root(found[0]), root(node)
            if ours != theirs:
                parent[theirs] = ours
    linked = {}
    for record in records:
        if nodes(record):
            kind, name = root(nodes(record)[0])
            linked[record.id] = name if kind == "group" else f"\0participant {name}"
    return linked


def assign(records: Sequence[Record], kfold: KFold) -> tuple[dict[str, int], dict[str, str]]:
    """``(id -> fold, id -> group)`` over the pool (ids of the pool only); groups are
    :func:`linked_groups`."""
    listed = read_groups(kfold.groups, {r.id for r in records}) if kfold.groups else {}
    groups = linked_groups(records, listed)
    pool = pool_of(records, kfold.pool)
    check_enough([stratum(r) for r in pool], [r.label for r in pool], kfold.k, "kfold.k")
    n_groups = len({groups.get(r.id, f"\0{r.id}") for r in pool})
    if n_groups < kfold.k:
        what = f"{n_groups} groups (of participants and kfold.groups) in the pool"
        raise ValueError(f"kfold.k: {what} cannot fill {kfold.k} folds; lower kfold.k")
    folds = assign_folds(
        [r.id for r in pool], [stratum(r) for r in pool], [1.0] * kfold.k, kfold.seed, groups
    )
    return folds, groups


def job_split(records: Sequence[Record], kfold: KFold) -> dict[str, set[str]]:
    """``{"train", "valid", "test"} -> ids`` for fold ``kfold.fold``."""
    folds, groups = assign(records, kfold)
    held_out = {i for i, f in folds.items() if f == kfold.fold}
    rest = [r for r in records if r.id in folds and r.id not in held_out]
    if kfold.select_on_test:
        return {"train": {r.id for r in rest}, "valid": held_out, "test": held_out}
    share = assign_folds(
        [r.id for r in rest],
        [stratum(r) for r in rest],
        [kfold.valid_share, 1 - kfold.valid_share],
        [kfold.seed, kfold.fold, 1],
        groups,
    )
    valid = {i for i, f in share.items() if f == 0}
    labels = {r.label for r in rest if r.id in valid}
    if labels != {0, 1}:
        raise ValueError(
            f"kfold.valid_share={kfold.valid_share}: the validation share of fold {kfold.fold} "
            f"({len(valid)} of {len(rest)} training vlogs) lacks a class; raise kfold.valid_share"
        )
    return {"train": set(share) - valid, "valid": valid, "test": held_out}


def describe(kfold: KFold, split: Mapping[str, set[str]]) -> dict:
    """What a job's ``metrics.json`` records about its fold."""
    return {**asdict(kfold), "protocol": kfold.protocol,
            **{f"n_{role}": len(ids) for role, ids in split.items()}}  # fmt: skip


def _csv(header: Sequence[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_folds(path: str | Path, folds: Mapping[str, int]) -> None:
    """``folds.csv``: ``id,fold``, in fold order then id order."""
    rows = sorted(folds.items(), key=lambda item: (item[1], item[0]))
    write_text_atomic(path, _csv(("id", "fold"), rows))


def read_folds(path: str | Path) -> dict[str, int]:
    """``id -> fold`` from a ``folds.csv``."""
    path = Path(path)
    folds = {}
    for line, row in read_table(path, ("id", "fold")):
        if not row["fold"].isdigit():
            raise DataError(path, f"line {line}: fold {row['fold']!r} is not a whole number")
        folds[row["id"]] = int(row["fold"])
    return folds


def write_split(path: str | Path, split: Mapping[str, set[str]]) -> None:
    """``split.csv``: ``id,role``; with ``select_on_test`` the held-out vlogs appear as
    both ``valid`` and ``test``."""
    rows = [(i, role) for role in ("train", "valid", "test") for i in sorted(split[role])]
    write_text_atomic(path, _csv(("id", "role"), rows))


def apply_kfold(datamodule, node: Mapping | None) -> tuple[KFold, dict[str, set[str]]] | None:
    """Give ``datamodule`` (a :class:`~dynmultidep.data.DepressionDataModule`) the folds
    of k-fold job ``node.fold``; ``None`` (and nothing changed) when k-fold is off."""
    kfold = KFold.from_config(node)
    if not kfold.enabled:
        return None
    datamodule.prepare_data()  # a synthetic corpus must exist before its index is read
    split = job_split(datamodule.records(), kfold)
    datamodule.use_split(split)
    return kfold, split
