"""Two models on the same test vlogs: which is better, and is the difference more than
chance? (``scripts/compare.py``)

Each side is a run directory (its ``predictions.csv``) or a sweep directory (one
``predictions.csv`` per job). Jobs pair up by fold in k-fold sweeps and by seed
otherwise; every pair must hold the same test vlogs with the same labels, or the
comparison is refused. Reported, for accuracy, F1 (at each run's decisions) and
AUROC (probabilities):

* both models' values on all paired predictions, and B - A;
* a paired bootstrap interval of B - A, resampling vlogs (a vlog's rows of every
  seed together);
* McNemar's exact test on the decisions, when every vlog appears once (a run, or the
  pooled folds of a k-fold sweep);
* with two or more folds or seeds, a sign-flip test of the per-fold (per-seed)
  differences.

PHQ-8 regression runs (``module.task=regression``) are compared on RMSE, MAE and CCC of
their predicted scores and accuracy and F1 of their decisions (score >= 10, judged
against true score >= 10; McNemar's test on those), with the trivial baselines (the
training folds' mean and median score, A's runs') beside them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dynmultidep.errors import FileError
from dynmultidep.evaluation.predictions import PredictionRows, read_run_predictions
from dynmultidep.evaluation.regression import BASELINES, depressed
from dynmultidep.evaluation.significance import (
    RESAMPLED,
    SCORE_RESAMPLED,
    mcnemar,
    paired_bootstrap,
    paired_score_bootstrap,
    point_metrics,
    point_score_metrics,
    sign_flip_test,
)
from dynmultidep.sweeps.summary import BASELINE_LABELS, read_jobs, summarize

NAMES = {"acc": "accuracy", "f1": "F1", "auroc": "AUROC", "rmse": "RMSE", "mae": "MAE",
         "ccc": "CCC"}  # fmt: skip


@dataclass
class Side:
    """One model: ``parts`` maps a pairing key (``"run"``, ``"fold 3"``, ``"seed 1"``)
    to its test predictions."""

    path: Path
    parts: dict[str, PredictionRows]
    configuration: str = ""


def read_side(path: str | Path, select: str | None = None) -> Side:
    """A run or sweep directory's predictions; ``select``: overrides (space-separated)
    every chosen job of a sweep must have, to pick one of several configurations."""
    path = Path(path)
    if (path / "predictions.csv").is_file():
        return Side(path, {"run": read_run_predictions(path)})
    if not path.is_dir():
        raise FileError(path, "not found")
    try:
        jobs = read_jobs(path)
    except FileError:
        raise FileError(
            path, "neither a run directory (predictions.csv) nor a sweep directory (job folders)"
        ) from None
    # Hydra writes swept booleans as True/False: compare overrides case-insensitively
    wanted = set((select or "").lower().split())
    jobs = [j for j in jobs
            if j.metrics is not None and wanted <= {o.lower() for o in j.overrides}]  # fmt: skip
    rows = summarize(jobs)
    if not rows:
        raise FileError(path, f"no finished job{' matches ' + select if select else ''}")
    if len(rows) > 1:
        listed = "; ".join(row.configuration for row in rows)
        raise FileError(path, f"holds {len(rows)} configurations ({listed}); pick one with "
                              "--select-a/--select-b")  # fmt: skip
    parts = {}
    for job in rows[0].jobs:
        kfold = job.metrics.get("kfold")
        key = f"fold {kfold['fold']}" if kfold else f"seed {job.metrics.get('seed')}"
        if key in parts:
            raise FileError(job.path, f"a second job for {key}; pick one configuration with "
                                      "--select-a/--select-b")  # fmt: skip
        parts[key] = read_run_predictions(job.path)
    return Side(path, parts, select or rows[0].configuration)


def align(a: Side, b: Side) -> tuple[list[str], PredictionRows, PredictionRows]:
    """``(keys, A's rows, B's rows)``, B's rows in A's order key by key; refuses sides
    whose keys, test vlogs or labels differ."""
    if set(a.parts) != set(b.parts):
        raise FileError(b.path, f"pairs up as {', '.join(sorted(b.parts))} but {a.path} as "
                                f"{', '.join(sorted(a.parts))}; compare runs on the same folds "
                                "or seeds")  # fmt: skip
    keys = sorted(a.parts)
    left, right = [], []
    for key in keys:
        first, second = a.parts[key], b.parts[key]
        if set(first.ids) != set(second.ids):
            only_a, only_b = set(first.ids) - set(second.ids), set(second.ids) - set(first.ids)
            raise FileError(
                second.path,
                f"its test vlogs differ from {first.path}'s ({len(only_a)} only there, "
                f"{len(only_b)} only here); compare models tested on the same vlogs",
            )
        where = {vlog_id: i for i, vlog_id in enumerate(second.ids)}
        second = second.take([where[i] for i in first.ids])
        if first.regression != second.regression:
            raise FileError(second.path, f"predicts {_kind(second)}, {first.path} "
                                         f"{_kind(first)}: compare runs of one task")  # fmt: skip
        if not torch.equal(first.labels, second.labels):
            raise FileError(second.path, f"labels differ from {first.path}'s for the same vlogs")
        if first.regression and not torch.equal(first.true_scores, second.true_scores):
            raise FileError(second.path, f"PHQ-8 scores differ from {first.path}'s for the "
                                         "same vlogs")  # fmt: skip
        left.append(first)
        right.append(second)
    return keys, PredictionRows.concatenate(left), PredictionRows.concatenate(right)


def _kind(rows: PredictionRows) -> str:
    return "PHQ-8 scores" if rows.regression else "probabilities"


def _measures(first: PredictionRows, second: PredictionRows, units: Tensor, resamples: int,
              seed: int):  # fmt: skip
    """The task's metric names, ``point(rows, lo, hi)`` (its metrics on rows
    ``lo:hi``) and the paired bootstrap intervals of B - A."""
    if first.regression:
        true = first.true_scores

        def point(rows: PredictionRows, lo: int, hi: int) -> dict[str, float]:
            return point_score_metrics(true[lo:hi], rows.scores[lo:hi])

        interval = paired_score_bootstrap(true, first.scores, second.scores, units, resamples, seed)
        return SCORE_RESAMPLED, point, interval
    labels = first.labels

    def point(rows: PredictionRows, lo: int, hi: int) -> dict[str, float]:
        return point_metrics(labels[lo:hi], rows.decisions[lo:hi], rows.probs[lo:hi])

    pairs = (first.decisions, first.probs), (second.decisions, second.probs)
    return RESAMPLED, point, paired_bootstrap(labels, *pairs, units, resamples, seed)


def compare(a: Side, b: Side, resamples: int = 1000, seed: int = 0) -> dict:
    """The comparison of B against A (see the module docstring) as a JSON-ready dict."""
    keys, first, second = align(a, b)
    # what the decisions are judged against: the labels, or a true score of at least 10
    labels = depressed(first.true_scores).long() if first.regression else first.labels
    ids = first.ids
    unit_of: dict[str, list[int]] = {}
    for i, vlog_id in enumerate(ids):
        unit_of.setdefault(vlog_id, []).append(i)
    repeats = {len(rows) for rows in unit_of.values()}
    if len(repeats) != 1:
        raise FileError(b.path, "vlogs appear an unequal number of times across folds or seeds")
    units = torch.tensor(list(unit_of.values()))  # (U, S)
    names, point, interval = _measures(first, second, units, resamples, seed)
    values_a, values_b = point(first, 0, len(ids)), point(second, 0, len(ids))
    report = {
        "a": {"path": str(a.path), "configuration": a.configuration},
        "b": {"path": str(b.path), "configuration": b.configuration},
        "paired_by": keys,
        "vlogs": len(unit_of),
        "predictions": len(ids),
        "metrics": {
            name: {
                "a": values_a[name],
                "b": values_b[name],
                "difference": values_b[name] - values_a[name],
                "bootstrap_95": interval[name],
            }
            for name in names
        },  # fmt: skip
        "mcnemar": mcnemar(labels, first.decisions, second.decisions) if repeats == {1} else None,
        "paired_test": None,
    }
    if len(keys) > 1:
        offsets, start = [], 0
        for key in keys:
            offsets.append((start, start + len(a.parts[key].ids)))
            start = offsets[-1][1]
        test = {"over": keys[0].split()[0] + "s", "pairs": len(keys)}
        parts = [(point(first, lo, hi), point(second, lo, hi)) for lo, hi in offsets]
        for name in names:
            differences = [y[name] - x[name] for x, y in parts]
            mean = sum(differences) / len(differences)
            test[name] = {"mean_difference": mean, "p": sign_flip_test(differences)}
        report["paired_test"] = test
    if first.regression and first.baselines:  # A's training folds' constants, as A's metrics
        report["baselines"] = {
            b: point_score_metrics(first.true_scores, first.baselines[b]) for b in BASELINES
        }
    return report


def _rows(report: dict) -> list[list[str]]:
    test = report["paired_test"]
    baselines = report.get("baselines") or {}
    rows = []
    for name in report["metrics"]:
        m = report["metrics"][name]
        low, high = m["bootstrap_95"]
        row = [NAMES[name], f"{m['a']:.4f}", f"{m['b']:.4f}", f"{m['difference']:+.4f}",
               f"[{low:+.4f}, {high:+.4f}]"]  # fmt: skip
        if test:
            row.append(f"{test[name]['mean_difference']:+.4f}, p = {test[name]['p']:.3g}")
        row += [f"{baselines[b][name]:.4f}" for b in baselines]
        rows.append(row)
    return rows


def _header(report: dict) -> list[str]:
    header = ["metric", "A", "B", "B − A", "95% paired bootstrap of B − A"]
    test = report["paired_test"]
    if test:
        header.append(f"sign-flip test over {test['pairs']} {test['over']}: mean B − A, p")
    header += [f"{BASELINE_LABELS[b]} (A's folds)" for b in report.get("baselines") or {}]
    return header


def _mcnemar_line(report: dict) -> str:
    test = report["mcnemar"]
    if test is None:
        return "McNemar: not computed (vlogs repeat across seeds; see the test over seeds)"
    return (f"McNemar (exact): {test['only_a_right']} vlogs only A gets right, "
            f"{test['only_b_right']} only B; p = {test['p']:.3g}")  # fmt: skip


def _side_line(report: dict, side: str) -> str:
    info = report[side]
    return f"{side.upper()}: {info['path']}" + (f" (`{info['configuration']}`)"
                                                 if info["configuration"] else "")  # fmt: skip


def print_comparison(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"B against A: {report['vlogs']} vlogs, {report['predictions']} paired "
                        f"predictions ({', '.join(report['paired_by'])})")  # fmt: skip
    for i, column in enumerate(_header(report)):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in _rows(report):
        table.add_row(*row)
    console.print(_side_line(report, "a"))
    console.print(_side_line(report, "b"))
    console.print(table)
    console.print(_mcnemar_line(report))


def comparison_markdown(report: dict) -> str:
    header = _header(report)
    lines = [f"# {_side_line(report, 'b')} against {_side_line(report, 'a')}", "",
             f"{report['vlogs']} vlogs, {report['predictions']} paired predictions "
             f"({', '.join(report['paired_by'])}).", "",
             "| " + " | ".join(header) + " |",
             "|---|" + "---:|" * (len(header) - 1)]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in _rows(report)]
    lines += ["", _mcnemar_line(report)]
    return "\n".join(lines) + "\n"


def comparison_json(report: dict) -> str:
    return json.dumps(report, indent=2) + "\n"
