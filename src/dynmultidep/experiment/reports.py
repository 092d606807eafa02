"""The evaluation report of one fold: metrics, the trivial baseline, bootstrap
intervals; printed as a table and written as ``metrics.json``."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dynmultidep.atomic import write_text_atomic
from dynmultidep.experiment.metrics import (
    METRICS,
    all_positive_baseline,
    bootstrap_interval,
    evaluate,
)
from dynmultidep.experiment.predictions import Predictions


def fold_report(predictions: Predictions, seed: int, resamples: int = 1000) -> dict:
    """Metrics of labelled predictions, beside those of calling every vlog depressed."""
    labels = predictions.labels
    if labels is None:
        raise ValueError("a report needs labelled predictions")
    return {
        "metrics": evaluate(predictions.probs, labels, predictions.threshold),
        "all_positive_baseline": all_positive_baseline(labels),
        "bootstrap_95": bootstrap_interval(
            predictions.probs, labels, seed, resamples, threshold=predictions.threshold
        ),
        "vlogs": len(labels),
        "depressed": int(labels.sum()),
    }


def print_report(report: dict, title: str, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{title} ({report['vlogs']} vlogs, {report['depressed']} depressed)")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("95% bootstrap", justify="right")
    table.add_column("all-positive baseline", justify="right")
    for name in METRICS:
        interval = report["bootstrap_95"].get(name)
        shown = f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        table.add_row(
            name,
            f"{report['metrics'][name]:.4f}",
            shown,
            f"{report['all_positive_baseline'][name]:.4f}",
        )
    console.print(table)


def write_json(path: str | Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")
