"""The evaluation report of one fold: metrics, the trivial baseline, bootstrap
intervals, per-gender metrics and, with a tuned decision threshold, the metrics at
it beside those at the fixed one; printed as tables and written as ``metrics.json``.

``metrics.json`` keys: ``metrics`` (at ``threshold``, 0.5 unless set otherwise),
``all_positive_baseline``, ``bootstrap_95``, ``vlogs``, ``depressed``, ``threshold``;
``tuned`` (``threshold``, ``metric``, ``chosen_on``, ``metrics``) when the threshold was
tuned; ``by_gender`` (gender -> ``metrics``, ``vlogs``, ``depressed``) when the vlogs
have genders.

A regression run's (``module.task=regression``, :func:`regression_report`): ``objective``
(``"regression"``), ``metrics`` (:data:`~dynmultidep.evaluation.regression.REGRESSION_METRICS`),
``baselines`` (``train_mean``, ``train_median``: each ``prediction`` and ``metrics``),
``bootstrap_95`` (RMSE, MAE, CCC), ``vlogs``, ``depressed`` (true score at least the
cut-off), ``cutoff``, and ``by_gender`` as above with the baselines beside each gender's
metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from dynmultidep.atomic import write_text_atomic
from dynmultidep.evaluation.metrics import (
    METRICS,
    THRESHOLDED,
    all_positive_baseline,
    binary_metrics,
    bootstrap_interval,
)
from dynmultidep.evaluation.predictions import Predictions
from dynmultidep.evaluation.regression import (
    BASELINES,
    PHQ8_CUTOFF,
    REGRESSION_METRICS,
    baseline_metrics,
    regression_metrics,
    score_bootstrap,
)

GENDER_COLUMNS = ("acc", "f1", "macro_f1", "weighted_f1", "auroc", "ece")  # printed by gender
SCORE_GENDER_COLUMNS = ("rmse", "mae", "ccc", "acc", "f1", "macro_f1")  # regression, by gender
BASELINE_NAMES = {"train_mean": "train-mean baseline", "train_median": "train-median baseline"}


def by_gender(
    genders: list, labels: Tensor, metrics_of: Callable[[list[int]], dict[str, float]]
) -> dict:
    """gender -> ``{"metrics", "vlogs", "depressed"}`` for each gender present (empty
    when no vlog has one); ``metrics_of(rows)`` gives the metrics of those rows. AUROC
    is ``None`` where a gender's vlogs lack a class."""
    out = {}
    for gender in sorted({g for g in genders if g}):
        rows = [i for i, g in enumerate(genders) if g == gender]
        y = labels[rows]
        metrics = metrics_of(rows)
        if y.min() == y.max():
            metrics["auroc"] = None
        out[gender] = {"metrics": metrics, "vlogs": len(rows), "depressed": int(y.sum())}
    return out


def fold_report(predictions: Predictions, seed: int, resamples: int = 1000) -> dict:
    """Metrics of labelled predictions, beside those of calling every vlog depressed
    (regression: :func:`regression_report`)."""
    if predictions.regression:
        return regression_report(predictions, seed, resamples)
    labels = predictions.labels
    if labels is None:
        raise ValueError("a report needs labelled predictions")
    probs, threshold = predictions.probs, predictions.threshold
    report = {
        "metrics": binary_metrics(probs, labels, threshold),
        "all_positive_baseline": all_positive_baseline(labels),
        "bootstrap_95": bootstrap_interval(probs, labels, seed, resamples, threshold=threshold),
        "vlogs": len(labels),
        "depressed": int(labels.sum()),
        "threshold": threshold,
    }
    if predictions.tuned_threshold is not None:
        tuned = predictions.tuned_threshold
        report["tuned"] = {
            "threshold": tuned,
            "metric": predictions.tuned_metric,
            "chosen_on": "valid",
            "metrics": binary_metrics(probs, labels, tuned),
        }

    def metrics_of(rows: list[int]) -> dict[str, float]:
        return binary_metrics(probs[rows], labels[rows], threshold)

    genders = by_gender(predictions.genders, labels, metrics_of)
    if genders:
        report["by_gender"] = genders
    return report


def regression_report(predictions: Predictions, seed: int, resamples: int = 1000) -> dict:
    """Metrics of labelled predicted PHQ-8 scores, beside those of the trivial baselines
    (``predictions.baselines``), overall and by gender."""
    scores, true = predictions.scores, predictions.true_scores
    if true is None:
        raise ValueError("a report needs labelled predictions")
    if not predictions.baselines:
        raise ValueError("a regression report needs the trivial baselines' predictions")
    truth = predictions.truth
    report = {
        "objective": "regression",
        "metrics": regression_metrics(scores, true),
        "baselines": baseline_metrics(predictions.baselines, true),
        "bootstrap_95": score_bootstrap(scores, true, seed, resamples),
        "vlogs": len(true),
        "depressed": int(truth.sum()),
        "cutoff": PHQ8_CUTOFF,
    }

    def metrics_of(rows: list[int]) -> dict:
        index = torch.tensor(rows, dtype=torch.long)
        return regression_metrics(scores[index], true[index])

    genders = by_gender(predictions.genders, truth, metrics_of)
    for gender, part in genders.items():
        rows = torch.tensor([i for i, g in enumerate(predictions.genders) if g == gender])
        part["baselines"] = baseline_metrics(predictions.baselines, true[rows])
    if genders:
        report["by_gender"] = genders
    return report


def _cell(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def print_report(report: dict, title: str, console: Console | None = None) -> None:
    console = console or Console()
    if report.get("objective") == "regression":
        print_regression_report(report, title, console)
        return
    table = Table(title=f"{title} ({report['vlogs']} vlogs, {report['depressed']} depressed)")
    tuned = report.get("tuned")
    table.add_column("metric")
    table.add_column(f"model @ {report.get('threshold', 0.5):g}", justify="right")
    table.add_column("95% bootstrap", justify="right")
    if tuned:
        table.add_column(f"model @ {tuned['threshold']:.3f} (tuned on valid {tuned['metric']})",
                         justify="right")  # fmt: skip
    table.add_column("all-positive baseline", justify="right")
    for name in METRICS:
        interval = report["bootstrap_95"].get(name)
        shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        row = [name, f"{report['metrics'][name]:.4f}", shown]
        if tuned:
            row.append(f"{tuned['metrics'][name]:.4f}" if name in THRESHOLDED else "(same)")
        row.append(f"{report['all_positive_baseline'][name]:.4f}")
        table.add_row(*row)
    console.print(table)
    genders = report.get("by_gender")
    if genders:
        table = Table(title=f"{title}, by gender (at {report.get('threshold', 0.5):g})")
        table.add_column("gender")
        table.add_column("vlogs", justify="right")
        for name in GENDER_COLUMNS:
            table.add_column(name, justify="right")
        for gender, part in genders.items():
            table.add_row(gender, f"{part['vlogs']} ({part['depressed']} depressed)",
                          *[_cell(part["metrics"][m]) for m in GENDER_COLUMNS])  # fmt: skip
        console.print(table)


def print_regression_report(report: dict, title: str, console: Console) -> None:
    """The regression report as tables: every metric beside the trivial baselines'."""
    table = Table(title=f"{title} ({report['vlogs']} vlogs, {report['depressed']} with PHQ-8 "
                        f">= {report['cutoff']})")  # fmt: skip
    baselines = report["baselines"]
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("95% bootstrap", justify="right")
    for name in BASELINES:
        table.add_column(f"{BASELINE_NAMES[name]} ({baselines[name]['prediction']:.2f})",
                         justify="right")  # fmt: skip
    for name in REGRESSION_METRICS:
        interval = report["bootstrap_95"].get(name)
        shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        row = [name, _cell(report["metrics"][name]), shown]
        row += [_cell(baselines[b]["metrics"][name]) for b in BASELINES]
        table.add_row(*row)
    console.print(table)
    genders = report.get("by_gender")
    if not genders:
        return
    table = Table(title=f"{title}, by gender")
    table.add_column("gender")
    table.add_column("vlogs", justify="right")
    table.add_column("predictor")
    for name in SCORE_GENDER_COLUMNS:
        table.add_column(name, justify="right")
    for gender, part in genders.items():
        vlogs = f"{part['vlogs']} ({part['depressed']} depressed)"
        table.add_row(gender, vlogs, "model", *[_cell(part["metrics"][m])
                                                for m in SCORE_GENDER_COLUMNS])  # fmt: skip
        for b in BASELINES:
            metrics = part["baselines"][b]["metrics"]
            table.add_row("", "", b.replace("_", " "), *[_cell(metrics[m])
                                                       for m in SCORE_GENDER_COLUMNS])  # fmt: skip
    console.print(table)


def write_json(path: str | Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
