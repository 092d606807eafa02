"""One table for a multirun: every configuration's test metrics, mean ± std over seeds.

A sweep directory (``logs/train/multiruns/<stamp>/``) holds one directory per
job, each with ``.hydra/overrides.yaml`` and, when the job finished,
``metrics.json`` (a failed job leaves ``error.log`` instead). Jobs are grouped
into configurations by the overrides that vary between jobs, ``seed`` aside. :func:`write_summary`
writes into the sweep directory:

* ``summary.csv``: one row per configuration, ``<metric>_mean`` / ``<metric>_std``
  (sample standard deviation over seeds; empty for one seed), the seeds, the
  all-positive baseline, the number of failed jobs;
* ``summary.md``: the same as a Markdown table, then the failed jobs;
* ``gender_grid.png`` (``gender_grid_<n>.png`` for several configurations) when
  the jobs vary the train and test gender: 3x3 heatmaps of F1 and accuracy (PHQ-8
  regression: RMSE and CCC) (both, m, f; DAIC-WOZ: both and its gender codes 0 and 1,
  as in its by-gender columns).

k-fold sweeps (``sweep=kfold``, :mod:`dynmultidep.protocols.kfold`): the fold is not
a configuration either, the mean ± std is over folds, and each configuration's
out-of-fold predictions are pooled (:mod:`dynmultidep.evaluation.pooled`) into
``oof_predictions.csv`` (``oof_predictions_<n>.csv`` for several) and the
``pooled_<metric>`` columns. Configurations that selected checkpoints on the
reported fold (``kfold.select_on_test``) are labelled optimistic. Per-gender means
and, for tuned thresholds, the metrics at the tuned threshold get tables of their own.

Regression configurations (``module.task=regression``) get tables of their own
(:data:`SCORE_METRICS`: RMSE, MAE, CCC, Pearson's r and the decisions' metrics), each
configuration followed by its trivial baselines (every vlog given the training fold's
mean or median score) in the same columns, overall, pooled and by gender; in
``summary.csv`` their columns follow the binary ones (``<metric>_mean``,
``<baseline>_<metric>_mean``, ``pooled_<metric>``, ...).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from dynmultidep.atomic import write_text_atomic
from dynmultidep.data.records import normalize_gender
from dynmultidep.errors import FileError
from dynmultidep.evaluation.regression import BASELINES
from dynmultidep.tasks.run.resume import override_key
from dynmultidep.tasks.run.session import FAILURE_FILE

METRICS = {"acc": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1",
           "macro_f1": "macro-F1", "weighted_f1": "weighted-F1", "auroc": "AUROC",
           "ece": "ECE"}  # fmt: skip
GENDER_METRICS = ("acc", "f1", "macro_f1", "weighted_f1")
TUNED_METRICS = ("acc", "f1", "macro_f1", "weighted_f1")
NOT_CONFIGURATIONS = {"seed", "kfold.fold"}  # what a configuration's jobs may differ in
BASELINE = ("acc", "f1")  # of the all-positive baseline
WORDS = ("m", "f")  # the genders of D-Vlog and E-DAIC; DAIC-WOZ's are the codes 0 and 1
GENDER_KEYS = ("dataset.train_gender", "dataset.test_gender")
SCORE_METRICS = {"rmse": "RMSE", "mae": "MAE", "ccc": "CCC", "pearson": "Pearson r",
                 "acc": "accuracy", "f1": "F1", "macro_f1": "macro-F1",
                 "auroc": "AUROC"}  # fmt: skip
SCORE_GENDER_METRICS = ("rmse", "mae", "ccc", "acc", "f1")
BASELINE_LABELS = {"train_mean": "train-mean baseline", "train_median": "train-median baseline"}


@dataclass
class SweepJob:
    """One job of a sweep: its directory, overrides, and metrics or failure."""

    path: Path
    overrides: list[str]
    metrics: dict | None = None
    error: str | None = None

    @property
    def settings(self) -> dict[str, str]:
        """Override key -> the override."""
        return {override_key(o): o for o in self.overrides}

    def label(self, keys: set[str]) -> str:
        """The job's overrides of ``keys``, in command-line order."""
        return " ".join(o for k, o in self.settings.items() if k in keys)

    @property
    def genders(self) -> tuple[str, str]:
        dataset = (self.metrics or {}).get("dataset", {})
        return tuple(normalize_gender(dataset.get(k)) or "both"
                     for k in ("train_gender", "test_gender"))  # fmt: skip


@dataclass
class Row:
    """One configuration: its finished jobs' metrics and its failed jobs."""

    configuration: str
    jobs: list[SweepJob] = field(default_factory=list)
    failed: list[SweepJob] = field(default_factory=list)

    @property
    def seeds(self) -> list:
        return [j.metrics.get("seed") for j in self.jobs]

    @property
    def kfold(self) -> dict | None:
        """The k-fold settings of its jobs (``None`` outside k-fold sweeps)."""
        return next((j.metrics["kfold"] for j in self.jobs if j.metrics.get("kfold")), None)

    @property
    def protocol(self) -> str:
        return (self.kfold or {}).get("protocol", "")

    @property
    def task(self) -> str:
        """``regression`` when its jobs predicted PHQ-8 scores (or, all failed, were asked
        to), else ``binary``."""
        if any(j.metrics.get("objective") == "regression" for j in self.jobs):
            return "regression"
        asked = {j.settings.get("module.task", "").partition("=")[2] for j in self.failed}
        return "regression" if not self.jobs and asked == {"regression"} else "binary"

    @property
    def optimistic(self) -> bool:
        return bool((self.kfold or {}).get("select_on_test"))

    def values(self, metric: str, source: str = "metrics") -> list[float]:
        """Each job's ``metric`` in its report's ``source`` (a dotted path such as
        ``by_gender.f.metrics``); jobs without it are left out."""
        out = []
        for job in self.jobs:
            node = job.metrics
            for part in f"{source}.{metric}".split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                out.append(float(node))
        return out

    def mean_std(self, metric: str, source: str = "metrics") -> tuple[float, float]:
        """Mean and sample standard deviation (NaN for one seed; both NaN for none)."""
        values = self.values(metric, source)
        if not values:
            return math.nan, math.nan
        std = statistics.stdev(values) if len(values) > 1 else math.nan
        return statistics.fmean(values), std


def read_jobs(sweep_dir: str | Path) -> list[SweepJob]:
    """Every job directory of ``sweep_dir`` (those with ``.hydra/overrides.yaml``), in job
    order; :class:`FileError` if there is none."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileError(sweep_dir, "sweep directory not found")
    dirs = [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")]
    if not dirs:
        raise FileError(sweep_dir, "holds no job directories (no */.hydra/overrides.yaml)")
    dirs.sort(key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else p.name))
    return [read_job(d) for d in dirs]


def read_job(job_dir: Path) -> SweepJob:
    overrides = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
    job = SweepJob(job_dir, [str(o) for o in overrides or []])
    metrics_path = job_dir / "metrics.json"
    if metrics_path.is_file():
        try:
            job.metrics = json.loads(metrics_path.read_text())
            job.metrics["metrics"]  # noqa: B018 (a metrics.json without them is unusable)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            job.metrics, job.error = None, f"unreadable metrics.json ({type(err).__name__})"
        return job
    failure = job_dir / FAILURE_FILE
    if failure.is_file():
        job.error = (failure.read_text().strip().splitlines() or ["failed"])[0]
    else:
        job.error = "no metrics.json: unfinished, interrupted or killed"
    return job


def varying_keys(jobs: Sequence[SweepJob]) -> set[str]:
    """Override keys whose value is not the same in every job."""
    keys = {k for job in jobs for k in job.settings}
    return {k for k in keys if len({job.settings.get(k) for job in jobs}) > 1}


def common_overrides(jobs: Sequence[SweepJob]) -> list[str]:
    varying = varying_keys(jobs)
    return [o for k, o in jobs[0].settings.items() if k not in varying] if jobs else []


def summarize(jobs: Sequence[SweepJob]) -> list[Row]:
    """One row per configuration (the overrides that vary, but the seed), in the order
    of their first job."""
    keys = varying_keys(jobs) - NOT_CONFIGURATIONS
    rows: dict[str, Row] = {}
    for job in jobs:
        label = job.label(keys) or "all jobs"
        row = rows.setdefault(label, Row(label))
        (row.jobs if job.metrics is not None else row.failed).append(job)
    return list(rows.values())


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


def summary_csv(rows: Sequence[Row], pooled: dict[str, dict] | None = None) -> str:
    """``pooled``: configuration -> its pooled out-of-fold report (k-fold sweeps). The
    regression columns (:func:`score_columns`) follow where any row regresses scores."""
    pooled = pooled or {}
    regression = [row for row in rows if row.task == "regression"]
    genders = score_genders(regression)
    columns = ["configuration", "protocol", "seeds", "n_seeds", "failed"]
    columns += [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    columns += [f"all_positive_{m}" for m in BASELINE]
    columns += [f"tuned_{m}_{s}" for m in TUNED_METRICS for s in ("mean", "std")]
    genders_of_rows = report_genders(rows)
    columns += [f"{g}_{m}_{s}" for g in genders_of_rows for m in GENDER_METRICS
                for s in ("mean", "std")]  # fmt: skip
    columns += ["pooled_vlogs", "pooled_missing"] + [f"pooled_{m}" for m in METRICS]
    columns += [f"pooled_all_positive_{m}" for m in BASELINE]
    if regression:
        columns += score_columns(genders)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = [row.configuration, row.protocol, " ".join(map(str, row.seeds)), len(row.jobs),
                 len(row.failed)]  # fmt: skip
        for metric in METRICS:
            cells += [_number(v) for v in row.mean_std(metric)]
        cells += [_number(row.mean_std(m, "all_positive_baseline")[0]) for m in BASELINE]
        for metric in TUNED_METRICS:
            cells += [_number(v) for v in row.mean_std(metric, "tuned.metrics")]
        for gender in genders_of_rows:
            for metric in GENDER_METRICS:
                cells += [_number(v) for v in row.mean_std(metric, f"by_gender.{gender}.metrics")]
        report = pooled.get(row.configuration)
        if report is None:
            cells += [""] * (2 + len(METRICS) + len(BASELINE))
        else:
            cells += [report["vlogs"], report["missing"]]
            cells += [_pooled(report["metrics"], m) for m in METRICS]  # regression: no ECE
            cells += [_pooled(report.get("all_positive_baseline", {}), m) for m in BASELINE]
        if regression:
            cells += score_cells(row, pooled.get(row.configuration), genders)
        writer.writerow(cells)
    return buffer.getvalue()


def ordered_genders(genders: set[str]) -> list[str]:
    """m and f (D-Vlog, E-DAIC: both, always), else the codes found (DAIC-WOZ's 0 and 1)."""
    return list(WORDS) if genders <= set(WORDS) else sorted(genders)


def report_genders(rows: Iterable[Row]) -> list[str]:
    """The genders of the binary tables' columns: :func:`ordered_genders` of those the
    rows' reports break their metrics down by."""
    return ordered_genders({g for row in rows for job in row.jobs
                            for g in job.metrics.get("by_gender", {})})  # fmt: skip


def score_genders(rows: Sequence[Row]) -> list[str]:
    """The genders the regression rows' reports break their metrics down by."""
    return sorted({g for row in rows for job in row.jobs for g in job.metrics.get("by_gender", {})})


def score_columns(genders: Sequence[str]) -> list[str]:
    """The regression columns of ``summary.csv``."""
    stats = ("mean", "std")
    columns = [f"{m}_{s}" for m in SCORE_METRICS if m not in METRICS for s in stats]
    columns += [f"{b}_{m}_{s}" for b in BASELINES for m in SCORE_METRICS for s in stats]
    columns += [f"{g}_{m}_{s}" for g in genders for m in SCORE_GENDER_METRICS for s in stats]
    columns += [f"pooled_{m}" for m in SCORE_METRICS if m not in METRICS]
    columns += [f"pooled_{b}_{m}" for b in BASELINES for m in SCORE_METRICS]
    return columns


def score_cells(row: Row, pooled: dict | None, genders: Sequence[str]) -> list:
    """A row's cells of :func:`score_columns` (empty for a binary row); the metrics both
    tasks report (accuracy, F1, ...) fill the binary columns of the same names."""
    width = len(score_columns(genders))
    if row.task != "regression":
        return [""] * width
    cells = []
    for metric in SCORE_METRICS:
        if metric not in METRICS:
            cells += [_number(v) for v in row.mean_std(metric)]
    for b in BASELINES:
        for metric in SCORE_METRICS:
            cells += [_number(v) for v in row.mean_std(metric, f"baselines.{b}.metrics")]
    for gender in genders:
        for metric in SCORE_GENDER_METRICS:
            cells += [_number(v) for v in row.mean_std(metric, f"by_gender.{gender}.metrics")]
    if pooled is None:
        return cells + [""] * (width - len(cells))
    cells += [_pooled(pooled["metrics"], m) for m in SCORE_METRICS if m not in METRICS]
    for b in BASELINES:
        baseline = pooled["baselines"].get(b, {}).get("metrics", {})
        cells += [_pooled(baseline, m) for m in SCORE_METRICS]
    return cells


def _pooled(metrics: dict, name: str) -> str:
    value = metrics.get(name)
    return "" if value is None else _number(value)


def _mean_pm_std(row: Row, metric: str, source: str = "metrics") -> str:
    mean, std = row.mean_std(metric, source)
    if math.isnan(mean):
        return "–"
    return f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def _table(header: Sequence[str], text_columns: int = 1) -> list[str]:
    """A Markdown table's header lines; numbers (right-aligned) after ``text_columns``."""
    aligns = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    return ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]


def _name(row: Row) -> str:
    """The configuration, with the optimistic protocol said where it applies."""
    label = f"`{row.configuration}`"
    return label + " **(optimistic: selected on the reported fold)**" if row.optimistic else label


def _gender_lines(rows: Sequence[Row]) -> list[str]:
    cells = []
    genders = report_genders(rows)
    for row in rows:
        for gender in genders:
            source = f"by_gender.{gender}.metrics"
            if row.values("acc", source):
                cells.append([_name(row), gender, str(len(row.values("acc", source)))]
                             + [_mean_pm_std(row, m, source) for m in GENDER_METRICS])  # fmt: skip
    if not cells:
        return []
    header = ["configuration", "gender", "jobs", *(METRICS[m] for m in GENDER_METRICS)]
    lines = ["", "## By gender", "", "Test fold(s) of each gender; mean ± std over jobs.", ""]
    return lines + _table(header, 2) + ["| " + " | ".join(c) + " |" for c in cells]


def _tuned_lines(rows: Sequence[Row]) -> list[str]:
    tuned = [row for row in rows if row.values("acc", "tuned.metrics")]
    if not tuned:
        return []
    header = ["configuration", "threshold", *(f"{METRICS[m]} @ 0.5" for m in TUNED_METRICS),
              *(f"{METRICS[m]} @ tuned" for m in TUNED_METRICS)]  # fmt: skip
    lines = ["", "## Tuned decision threshold", "",
             "Thresholds tuned on each job's validation fold (`module.threshold=tune`); "
             "the same predictions at 0.5 and at the tuned threshold.", ""]  # fmt: skip
    lines += _table(header)
    for row in tuned:
        cells = [_name(row), _mean_pm_std(row, "threshold", "tuned")]
        cells += [_mean_pm_std(row, m) for m in TUNED_METRICS]
        cells += [_mean_pm_std(row, m, "tuned.metrics") for m in TUNED_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pooled_lines(rows: Sequence[Row], pooled: dict[str, dict]) -> list[str]:
    if not pooled:
        return []
    header = ["configuration", "vlogs", *METRICS.values(), "all-positive acc",
              "all-positive F1"]  # fmt: skip
    lines = ["", "## Out-of-fold predictions, pooled", "",
             "Every held-out fold's predictions together (each vlog once), at 0.5; "
             "`oof_predictions*.csv` holds them.", ""]  # fmt: skip
    lines += _table(header)
    for row in rows:
        report = pooled.get(row.configuration)
        if report is None:
            continue
        vlogs = str(report["vlogs"]) + (f" ({report['missing']} missing)" if report["missing"]
                                        else "")  # fmt: skip
        cells = [_name(row), vlogs] + [_number(report["metrics"][m]) for m in METRICS]
        cells += [_number(report["all_positive_baseline"][m]) for m in BASELINE]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _score_row_lines(row: Row, first: Sequence[str], metrics_of) -> list[str]:
    """A regression configuration's line, then one per trivial baseline:
    ``metrics_of(source)`` gives the cells of the metrics under ``source``."""
    lines = [_line([*first, *metrics_of("metrics")])]
    for b in BASELINES:
        blank = [""] * (len(first) - 1)
        lines.append(_line([f"↳ {BASELINE_LABELS[b]}", *blank,
                            *metrics_of(f"baselines.{b}.metrics")]))  # fmt: skip
    return lines


def _score_lines(rows: Sequence[Row], count: str, pooled: dict[str, dict]) -> list[str]:
    """The regression tables: overall, pooled (k-fold) and by gender, each configuration
    followed by its trivial baselines."""
    lines = ["", "## PHQ-8 regression", "",
             "Predicted PHQ-8 scores (`module.task=regression`); accuracy to AUROC judge the "
             "decision score >= 10. Under each configuration, its trivial baselines: every "
             "vlog given its training fold's mean or median score.", ""]  # fmt: skip
    lines += _table(["configuration", count, *SCORE_METRICS.values()])
    for row in rows:
        lines += _score_row_lines(row, [_name(row), str(len(row.jobs))],
                                  lambda source, r=row: [_mean_pm_std(r, m, source)
                                                         for m in SCORE_METRICS])  # fmt: skip
    reports = [(row, pooled[row.configuration]) for row in rows if row.configuration in pooled]
    if reports:
        lines += ["", "### Out-of-fold PHQ-8 predictions, pooled", "",
                  "Every held-out fold's predictions together (each vlog once); each "
                  "baseline predicts a vlog its own job's training-fold constant.", ""]  # fmt: skip
        lines += _table(["configuration", "vlogs", *SCORE_METRICS.values()])
        for row, report in reports:
            vlogs = str(report["vlogs"]) + (f" ({report['missing']} missing)"
                                            if report["missing"] else "")  # fmt: skip

            def pooled_cells(source: str, report=report) -> list[str]:
                node = report
                for part in source.split("."):
                    node = node.get(part, {})
                return [_pooled(node, m) or "–" for m in SCORE_METRICS]

            lines += _score_row_lines(row, [_name(row), vlogs], pooled_cells)
    genders = score_genders(rows)
    cells = []
    for row in rows:
        for gender in genders:
            prefix = f"by_gender.{gender}"
            if not row.values("rmse", f"{prefix}.metrics"):
                continue
            jobs = str(len(row.values("rmse", f"{prefix}.metrics")))
            cells.append([_name(row), gender, jobs, "model",
                          *[_mean_pm_std(row, m, f"{prefix}.metrics")
                            for m in SCORE_GENDER_METRICS]])  # fmt: skip
            for b in BASELINES:
                cells.append(["", "", "", BASELINE_LABELS[b],
                              *[_mean_pm_std(row, m, f"{prefix}.baselines.{b}.metrics")
                                for m in SCORE_GENDER_METRICS]])  # fmt: skip
    if cells:
        header = ["configuration", "gender", "jobs", "predictor",
                  *(SCORE_METRICS[m] for m in SCORE_GENDER_METRICS)]  # fmt: skip
        lines += ["", "### PHQ-8 regression by gender", "",
                  "Test fold(s) of each gender; mean ± std over jobs.", ""]  # fmt: skip
        lines += _table(header, 4) + [_line(c) for c in cells]
    return lines


def summary_markdown(
    rows: Sequence[Row],
    sweep_dir: Path,
    common: Sequence[str],
    pooled: dict[str, dict] | None = None,
) -> str:
    pooled = pooled or {}
    binary = [row for row in rows if row.task == "binary"]
    regression = [row for row in rows if row.task == "regression"]
    kfold = any(row.kfold for row in rows)
    count = "folds" if kfold else "seeds"
    header = ["configuration", count, *METRICS.values(), "all-positive acc", "all-positive F1"]
    where = "Held-out folds; mean ± sample standard deviation over folds" if kfold else (
        "Test fold; mean ± sample standard deviation over seeds")  # fmt: skip
    lines = [
        f"# Summary of {sweep_dir}",
        "",
        f"{where}. Overrides common to all jobs: `{' '.join(common) or '(none)'}`.",
    ]
    if binary or not regression:
        lines += ["", *_table(header)]
        for row in binary:
            cells = [_name(row), str(len(row.jobs))]
            cells += [_mean_pm_std(row, m) for m in METRICS]
            cells += [_mean_pm_std(row, m, "all_positive_baseline") for m in BASELINE]
            lines.append("| " + " | ".join(cells) + " |")
        names = {row.configuration for row in binary}
        lines += _pooled_lines(binary, {k: v for k, v in pooled.items() if k in names})
        lines += _gender_lines(binary)
        lines += _tuned_lines(binary)
    if regression:
        lines += _score_lines(regression, count, pooled)
    failed = sum(len(row.failed) for row in rows)
    lines += ["", f"## Failed jobs: {failed}", ""]
    lines += [f"- job `{job.path.name}` (`{row.configuration}`): {job.error}"
              for row in rows for job in row.failed]  # fmt: skip
    return "\n".join(lines) + "\n"


def gender_grids(jobs: Sequence[SweepJob]) -> dict[str, dict[tuple[str, str], Row]]:
    """For each configuration apart from the genders (and seed) that varies them:
    ``(train gender, test gender)`` -> the row of those jobs."""
    rest_keys = varying_keys(jobs) - {"seed", *GENDER_KEYS}
    grids: dict[str, dict[tuple[str, str], Row]] = {}
    for job in jobs:
        if job.metrics is None:
            continue
        rest = job.label(rest_keys)
        cell = grids.setdefault(rest, {}).setdefault(job.genders, Row(rest))
        cell.jobs.append(job)
    return {k: v for k, v in grids.items() if len(v) > 1}


def gender_grid_figure(grid: dict[tuple[str, str], Row], title: str):
    """Two heatmaps, rows train gender, columns test gender: F1 and accuracy, or for
    PHQ-8 regression RMSE (lower is better: the colours run the other way) and CCC."""
    import matplotlib.pyplot as plt
    import numpy as np

    genders = ["both", *ordered_genders({g for cell in grid for g in cell} - {"both"})]
    size = len(genders)  # both and two genders, or fewer where a grid lacks a code
    regression = any(row.task == "regression" for row in grid.values())
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    for ax, metric in zip(axes, ("rmse", "ccc") if regression else ("f1", "acc"), strict=True):
        values = np.full((size, size), np.nan)
        for (train, test), row in grid.items():
            values[genders.index(train), genders.index(test)] = row.mean_std(metric)[0]
        top = float(np.nanmax(values)) if metric == "rmse" and np.isfinite(values).any() else 1.0
        cmap = "viridis_r" if metric == "rmse" else "viridis"
        ax.imshow(values, cmap=cmap, vmin=0.0, vmax=top or 1.0)
        for i in range(size):
            for j in range(size):
                text = "–" if np.isnan(values[i, j]) else f"{values[i, j]:.3f}"
                shade = values[i, j] / (top or 1.0)  # viridis: dark below 0.6 of its range
                dark = np.isnan(shade) or (shade > 0.4 if metric == "rmse" else shade < 0.6)
                ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
        label = SCORE_METRICS[metric] if regression else METRICS[metric]
        ax.set(xticks=range(size), yticks=range(size), xticklabels=genders, yticklabels=genders,
               xlabel="test gender", ylabel="train gender", title=label)  # fmt: skip
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def pool_folds(rows: Sequence[Row], sweep_dir: Path) -> dict[str, dict]:
    """configuration -> pooled out-of-fold report, for the k-fold rows; writes their
    ``oof_predictions*.csv`` (id, gender, label, probability, prediction, configuration)."""
    from dynmultidep.evaluation.pooled import pool_predictions
    from dynmultidep.protocols.kfold import FOLDS_FILE, read_folds

    kfold_rows = [row for row in rows if row.kfold and row.jobs]
    folds_path = sweep_dir / FOLDS_FILE
    pool = list(read_folds(folds_path)) if folds_path.is_file() else None
    pooled = {}
    for n, row in enumerate(kfold_rows):
        result = pool_predictions([job.path for job in row.jobs], pool)
        pooled[row.configuration] = result.report()
        name = "oof_predictions.csv" if len(kfold_rows) == 1 else f"oof_predictions_{n}.csv"
        write_text_atomic(sweep_dir / name, oof_csv(result.rows, row))
    return pooled


def oof_csv(rows, row: Row) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if rows.regression:
        writer.writerow(["id", "gender", "label", "score", "predicted_score", "prediction",
                         "configuration"])  # fmt: skip
        for i, vlog_id in enumerate(rows.ids):
            writer.writerow([vlog_id, rows.genders[i], int(rows.labels[i]),
                             f"{float(rows.true_scores[i]):g}", f"{float(rows.scores[i]):.6f}",
                             int(rows.decisions[i]), row.configuration])  # fmt: skip
        return buffer.getvalue()
    writer.writerow(["id", "gender", "label", "probability", "prediction", "configuration"])
    for i, vlog_id in enumerate(rows.ids):
        writer.writerow([vlog_id, rows.genders[i], int(rows.labels[i]),
                         f"{float(rows.probs[i]):.6f}", int(rows.decisions[i]),
                         row.configuration])  # fmt: skip
    return buffer.getvalue()


def write_summary(sweep_dir: str | Path) -> list[Row]:
    """Read the jobs of ``sweep_dir``, write ``summary.csv``, ``summary.md`` and any gender
    heatmaps there; return the rows."""
    import matplotlib.pyplot as plt

    from dynmultidep.tasks.outputs.plots import save_png

    sweep_dir = Path(sweep_dir)
    jobs = read_jobs(sweep_dir)
    rows = summarize(jobs)
    pooled = pool_folds(rows, sweep_dir)
    write_text_atomic(sweep_dir / "summary.csv", summary_csv(rows, pooled))
    markdown = summary_markdown(rows, sweep_dir, common_overrides(jobs), pooled)
    write_text_atomic(sweep_dir / "summary.md", markdown)
    grids = gender_grids(jobs)
    for n, (rest, grid) in enumerate(grids.items()):
        name = "gender_grid.png" if len(grids) == 1 else f"gender_grid_{n}.png"
        fig = gender_grid_figure(grid, rest or "train gender x test gender")
        save_png(fig, sweep_dir / name)
        plt.close(fig)
    return rows
