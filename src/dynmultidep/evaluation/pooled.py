"""Out-of-fold predictions of a k-fold sweep, pooled into one set.

Each job of a k-fold sweep predicts its held-out fold (``predictions.csv``); the
folds partition the pool, so together the jobs predict every vlog of the pool
exactly once. Metrics of the pooled set (the same definitions as a fold's report)
complement the mean ± std over folds: they weigh every vlog alike, and AUROC and
ECE pool the ranking and calibration across models of different folds.

Regression jobs (``module.task=regression``) pool their predicted PHQ-8 scores, and each
trivial baseline predicts every vlog its own job's training-fold constant (from the job's
``metrics.json``), so the pooled baselines are what the same protocol gives them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.errors import DataError
from dynmultidep.evaluation.metrics import all_positive_baseline, binary_metrics
from dynmultidep.evaluation.predictions import PredictionRows, read_run_predictions
from dynmultidep.evaluation.regression import baseline_metrics, depressed, regression_metrics
from dynmultidep.evaluation.reports import by_gender


def rows_metrics(rows: PredictionRows, decisions=None) -> dict[str, float]:
    """The report's metrics of read-back predictions: thresholded ones from the
    ``decisions`` (default: the ``prediction`` column), AUROC and ECE from the
    probabilities."""
    decisions = rows.decisions if decisions is None else decisions
    metrics = binary_metrics(decisions.float(), rows.labels, 0.5)
    from_probs = binary_metrics(rows.probs, rows.labels)
    metrics["auroc"], metrics["ece"] = from_probs["auroc"], from_probs["ece"]
    return metrics


@dataclass
class Pooled:
    """``rows``: every job's predictions, concatenated; ``missing``: ids of the pool
    (``folds.csv``) that no finished job predicted."""

    rows: PredictionRows
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing

    def report(self) -> dict:
        if self.rows.regression:
            return self.regression_report()
        rows = self.rows
        report = {
            "vlogs": len(rows.ids),
            "depressed": int(rows.labels.sum()),
            "missing": len(self.missing),
            "metrics": rows_metrics(rows),
            "all_positive_baseline": all_positive_baseline(rows.labels),
        }
        if rows.tuned is not None:
            report["tuned_metrics"] = rows_metrics(rows, rows.tuned)
        genders = by_gender(rows.genders, rows.labels, lambda index: rows_metrics(rows.take(index)))
        if genders:
            report["by_gender"] = genders
        return report

    def regression_report(self) -> dict:
        """The pooled metrics of predicted PHQ-8 scores, beside the trivial baselines'
        (when every job's ``metrics.json`` gave them)."""
        rows = self.rows
        truth = depressed(rows.true_scores).long()

        def metrics_of(index: list[int]) -> dict:
            part = rows.take(index)
            return regression_metrics(part.scores, part.true_scores)

        report = {
            "objective": "regression",
            "vlogs": len(rows.ids),
            "depressed": int(truth.sum()),
            "missing": len(self.missing),
            "metrics": regression_metrics(rows.scores, rows.true_scores),
            "baselines": baseline_metrics(rows.baselines or {}, rows.true_scores),
        }
        genders = by_gender(rows.genders, truth, metrics_of)
        if genders:
            report["by_gender"] = genders
        return report


def pool_predictions(job_dirs: Sequence[Path], pool: Sequence[str] | None = None) -> Pooled:
    """Pool the ``predictions.csv`` of ``job_dirs``; a vlog predicted by two jobs is an
    error (overlapping folds). ``pool``: the ids that should all be covered."""
    parts, seen = [], {}
    for job_dir in job_dirs:
        rows = read_run_predictions(job_dir)
        for vlog_id in rows.ids:
            if vlog_id in seen:
                raise DataError(
                    rows.path,
                    f"vlog {vlog_id!r} is also predicted by {seen[vlog_id]}: the jobs' "
                    "held-out folds overlap, so their predictions cannot be pooled",
                )
            seen[vlog_id] = Path(job_dir).name
        parts.append(rows)
    if not parts:
        raise ValueError("no finished job to pool")
    missing = sorted(set(pool or ()) - set(seen))
    return Pooled(PredictionRows.concatenate(parts), missing)
