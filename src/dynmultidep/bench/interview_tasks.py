"""Both tasks on the synthetic twins of the interview corpora: PHQ-8 regression against
the trivial baselines and the binary task against the majority class.

Each job trains one task (``module.task``) on one twin (``dataset=synthetic_daic_woz``
or ``synthetic_edaic``) with one seed, as ``src/train.py`` does: seed ``s`` draws the
twin with generator seed ``s`` (``dataset.synthetic.seed``) and trains with seed ``s``,
as the learnability benchmark ties them, so that the spread over seeds includes the
draw of the corpus. A row holds the test metrics of the checkpoint selected on
validation and the baselines beside them (regression: every vlog given the training
fold's mean or median score, from the run's ``metrics.json``; binary: every vlog called
the fold's own majority class, scored as the runs score), and the same on the
validation fold (the model's metrics at the selected epoch; the baselines from the
prepared twin's labels), which is what the settings of :data:`TASKS` were chosen on
(development seeds, BENCHMARKS.md). AUROC is ``None`` on a fold of one class.

Targets: the mean test RMSE over seeds at most :data:`RMSE_MARGIN` times the mean
predictor's, and the binary task's mean accuracy and macro-F1 above the majority
class's, on each twin.
"""

from __future__ import annotations

import io
import json
import statistics
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch

from dynmultidep.bench import QUIET, compose_train
from dynmultidep.bench.runs import quiet_worker, scored_run, train_logged, validation_scores
from dynmultidep.evaluation.metrics import binary_metrics
from dynmultidep.evaluation.regression import trivial_baselines

CORPORA = ("daic_woz", "edaic")
# task -> src/train.py overrides, chosen on the validation fold with development seeds
# 100-103 (BENCHMARKS.md "DAIC-WOZ and E-DAIC twins"): the defaults, the default model
# throughout; its closed-form statistics expert, a logistic regression, is refused in
# regression, where it is learnt by gradient.
TASKS = {
    "regression": ("module.task=regression", "model.stats_fit=gradient"),
    "binary": ("module.task=binary",),
}
SCORES = {"regression": ("rmse", "mae", "ccc"), "binary": ("acc", "macro_f1", "auroc")}
RMSE_MARGIN = 0.8  # a clear margin: at least 20% below the mean predictor's RMSE


@dataclass(frozen=True)
class TaskPlan:
    preset: str = "small"  # dataset.synthetic.preset of both twins
    # twin sizes (dataset.synthetic.n): None, the preset's sessions (small: 60, test folds
    # of 12-14); 189, DAIC-WOZ's release count (test folds of about 47)
    sessions: tuple[int | None, ...] = (None,)
    seeds: tuple[int, ...] = (0, 1, 2)  # report seeds (development: 100, 101)
    epochs: int | None = None  # None: the training config's default
    corpora: tuple[str, ...] = CORPORA
    tasks: tuple[str, ...] = tuple(TASKS)
    overrides: tuple[str, ...] = ()  # more src/train.py overrides for every job


PLANS = {
    "full": TaskPlan(sessions=(None, 189)),
    "quick": TaskPlan(preset="tiny", seeds=(0,), epochs=2),
    # the section's test, in seconds: the statistics expert learnt by gradient (the
    # closed-form fit's cross-validation would take most of a one-epoch run), the twins
    # read in this process
    "tiny": TaskPlan(preset="tiny", seeds=(0,), epochs=1,
                     overrides=("model.stats_fit=gradient", "dataset.interview.workers=1")),
}  # fmt: skip


@dataclass(frozen=True)
class TaskJob:
    corpus: str
    task: str
    seed: int
    preset: str
    epochs: int | None = None
    extra: tuple[str, ...] = ()  # more src/train.py overrides (the plan's)
    sessions: int | None = None  # None: the preset's

    @property
    def twin(self) -> str:
        return self.preset if self.sessions is None else f"{self.preset}, {self.sessions} sessions"

    @property
    def key(self) -> str:
        size = "" if self.sessions is None else f"-n{self.sessions}"
        return f"{self.corpus}-{self.preset}{size}-{self.task}-seed{self.seed}"

    def dataset_overrides(self, work_dir: Path) -> list[str]:
        """The twin of this job, generated and prepared under ``work_dir/data`` (a twin
        of another size: ``work_dir/data-n{sessions}``)."""
        if self.sessions is None:
            size, data = [], work_dir / "data"
        else:  # a folder of its own: the twin's folder name does not say its size
            size = [f"dataset.synthetic.n={self.sessions}"]
            data = work_dir / f"data-n{self.sessions}"
        return [f"dataset=synthetic_{self.corpus}", f"dataset.synthetic.preset={self.preset}",
                f"dataset.synthetic.seed={self.seed}", f"paths.data_dir={data}", *size]  # fmt: skip

    def overrides(self, work_dir: Path) -> list[str]:
        out = [*self.dataset_overrides(work_dir), f"seed={self.seed}", *TASKS[self.task],
               *self.extra, *QUIET, f"paths.output_dir={work_dir / 'runs' / self.key}"]  # fmt: skip
        if self.epochs is not None:
            out.append(f"trainer.max_epochs={self.epochs}")
        return out


def plan_jobs(plan: TaskPlan) -> list[TaskJob]:
    return [TaskJob(corpus, task, seed, plan.preset, plan.epochs, plan.overrides, sessions)
            for corpus in plan.corpora for sessions in plan.sessions for seed in plan.seeds
            for task in plan.tasks]  # fmt: skip


def fold_baselines(job: TaskJob, work_dir: Path, conf_dir: str | Path) -> dict:
    """Generate and prepare the job's twin (in this process, so that parallel jobs only
    read it); return, for its ``valid`` and ``test`` folds, the regression baselines
    (the training fold's mean and median score), the binary one (the fold's majority
    class) and whether the fold holds one class only (its AUROC is then undefined)."""
    from hydra.utils import instantiate

    datamodule = instantiate(compose_train(conf_dir, job.overrides(work_dir)).dataset,
                             _convert_="all")  # fmt: skip
    datamodule.prepare_data()
    records = datamodule.records()
    train = torch.tensor([float(r.score) for r in records if r.fold == "train"])
    out = {}
    for fold in ("valid", "test"):
        chosen = [r for r in records if r.fold == fold]
        scores = torch.tensor([float(r.score) for r in chosen])
        labels = torch.tensor([float(r.label) for r in chosen])
        regression = {name: {k: baseline["metrics"][k] for k in ("rmse", "mae")}
                      for name, baseline in trivial_baselines(train, scores).items()}  # fmt: skip
        out[fold] = {"regression": regression, "binary": {"majority": majority(labels)},
                     "one_class": len(set(labels.tolist())) < 2}  # fmt: skip
    return out


def majority(labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and macro-F1 (as the runs compute them) of calling every vlog of a fold
    its majority class."""
    constant = torch.full_like(labels, float(labels.mean() > 0.5))
    with warnings.catch_warnings():  # a fold of one class: torchmetrics warns, as it should
        warnings.simplefilter("ignore")
        scores = binary_metrics(constant, labels)
    return {"acc": scores["acc"], "macro_f1": scores["macro_f1"]}


def run_job(job: TaskJob, work_dir: str | Path, conf_dir: str | Path) -> dict:
    """Train and test ``job`` (its twin prepared first); return its row (``error`` set
    if it failed). The training run's output goes to its ``job.log``."""
    work_dir = Path(work_dir)
    run_dir = work_dir / "runs" / job.key
    row = {"key": job.key, "corpus": job.corpus, "task": job.task, "seed": job.seed,
           "preset": job.preset, "twin": job.twin, "epochs": job.epochs,
           "extra": list(job.extra)}  # fmt: skip

    def work(log_text: io.StringIO) -> None:
        train_logged(compose_train(conf_dir, job.overrides(work_dir)), log_text)
        report = json.loads((run_dir / "metrics.json").read_text())
        val = validation_scores(run_dir, report.get("best_epoch"))
        row.update(test={k: report["metrics"][k] for k in SCORES[job.task]},
                   val={k: val.get(k) for k in SCORES[job.task]},
                   best_epoch=report.get("best_epoch"))  # fmt: skip
        if job.task == "regression":  # the run's own report of them
            row["baselines"] = {name: {k: b["metrics"][k] for k in ("rmse", "mae")}
                                for name, b in report["baselines"].items()}  # fmt: skip

    return scored_run(run_dir, row, work)


def run_jobs(
    jobs: Sequence[TaskJob],
    work_dir: str | Path,
    conf_dir: str | Path,
    workers: int = 1,
    on_row: Callable[[str], None] | None = None,
) -> list[dict]:
    """Every job's row, in the order of ``jobs``: the twins generated and prepared here
    first, then the jobs in this process (``workers`` 1) or in ``workers`` processes
    that share the cores out (:func:`.runs.quiet_worker`). ``on_row`` gets a line as
    each job ends."""
    import multiprocessing
    import os

    work_dir = Path(work_dir)
    baselines: dict[tuple[str, str, int], dict] = {}
    for job in jobs:
        if (job.corpus, job.twin, job.seed) not in baselines:
            baselines[job.corpus, job.twin, job.seed] = fold_baselines(job, work_dir, conf_dir)
    rows: dict[str, dict] = {}

    def finished(row: dict) -> None:
        job = next(j for j in jobs if j.key == row["key"])
        folds = baselines[job.corpus, job.twin, job.seed]
        row["val_baselines"] = folds["valid"][job.task]
        if job.task == "binary":
            row["baselines"] = folds["test"]["binary"]
            for fold, key in (("test", "test"), ("valid", "val")):
                if folds[fold]["one_class"] and row["error"] is None:
                    row[key]["auroc"] = None  # undefined on one class
        rows[row["key"]] = row
        if on_row is not None:
            state = row["error"] or ", ".join(f"{k} {v:.3f}" for k, v in row["test"].items()
                                              if v is not None)  # fmt: skip
            on_row(f"{len(rows)}/{len(jobs)} {row['key']}: {state} ({row['seconds']:.0f} s)")

    if workers <= 1:
        for job in jobs:
            finished(run_job(job, work_dir, conf_dir))
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=quiet_worker, initargs=(threads,),
        ) as pool:  # fmt: skip
            futures = [pool.submit(run_job, job, str(work_dir), str(conf_dir)) for job in jobs]
            for future in as_completed(futures):
                finished(future.result())
    return [rows[job.key] for job in jobs]


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(rows: Sequence[dict]) -> list[dict]:
    """One row per (corpus, twin, task): seeds, failures, and the mean and std over seeds of
    each score and baseline, on the test fold (``test_*``, ``<baseline>_*``) and on the
    validation fold (``val_*``, ``val_<baseline>_*``)."""
    out = []
    for corpus, twin, task in dict.fromkeys((r["corpus"], r["twin"], r["task"]) for r in rows):
        cell = [r for r in rows if (r["corpus"], r["twin"], r["task"]) == (corpus, twin, task)]
        ok = [r for r in cell if r["error"] is None]
        summary = {"corpus": corpus, "task": task, "preset": cell[0]["preset"], "twin": twin,
                   "seeds": [r["seed"] for r in ok],
                   "failed": [r["seed"] for r in cell if r["error"] is not None]}  # fmt: skip
        for fold, prefix in (("test", ""), ("val", "val_")):
            for score in SCORES[task]:
                key = f"{prefix}{score}" if prefix else f"test_{score}"
                summary[key], summary[f"{key}_std"] = _mean_std([r[fold][score] for r in ok])
            base_key = "baselines" if fold == "test" else "val_baselines"
            for name in ok[0][base_key] if ok else ():
                for score, _ in ok[0][base_key][name].items():
                    key = f"{prefix}{name}_{score}"
                    values = [r[base_key][name][score] for r in ok]
                    summary[key], summary[f"{key}_std"] = _mean_std(values)
        out.append(summary)
    return out


def targets(summary: Sequence[dict]) -> list[dict]:
    """``{"target", "measured", "met"}`` per twin and task, on the test fold."""
    found = []
    for s in summary:
        name = f"{s['corpus']} twin ({s['twin']})"
        if not s["seeds"]:
            found.append({"target": f"{name}, {s['task']}", "measured": "every seed failed",
                          "met": False})  # fmt: skip
        elif s["task"] == "regression":
            rmse, mean = s["test_rmse"], s["train_mean_rmse"]
            found.append({"target": f"{name}: regression RMSE <= {RMSE_MARGIN}x the train "
                          "mean's", "measured": f"{rmse:.2f} vs {mean:.2f} ({rmse / mean:.2f}x)",
                          "met": rmse <= RMSE_MARGIN * mean})  # fmt: skip
        else:
            acc, f1 = s["test_acc"], s["test_macro_f1"]
            base_acc, base_f1 = s["majority_acc"], s["majority_macro_f1"]
            found.append({"target": f"{name}: binary accuracy and macro-F1 above the "
                          "majority class's", "measured": f"acc {acc:.3f} vs {base_acc:.3f}, "
                          f"macro-F1 {f1:.3f} vs {base_f1:.3f}",
                          "met": acc > base_acc and f1 > base_f1})  # fmt: skip
    return found


def _pm(summary: dict, key: str) -> str:
    mean, std = summary.get(key), summary.get(f"{key}_std")
    return "—" if mean is None else f"{mean:.3f} ± {std:.3f}"


def tables(result: dict, fold: str = "test") -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows): regression and binary on ``fold`` (test or val)."""
    prefix = "test_" if fold == "test" else "val_"
    base = "" if fold == "test" else "val_"
    summary = result["summary"]
    where = f"{fold} fold, mean ± std over seeds {result['plan']['seeds']}"
    out = []
    rows = [[s["corpus"], s["twin"], str(len(s["seeds"])), _pm(s, f"{prefix}rmse"),
             _pm(s, f"{base}train_mean_rmse"), _pm(s, f"{base}train_median_rmse"),
             _pm(s, f"{prefix}mae"), _pm(s, f"{base}train_median_mae"), _pm(s, f"{prefix}ccc")]
            for s in summary if s["task"] == "regression"]  # fmt: skip
    if rows:
        header = ["twin", "size", "seeds", "RMSE", "train mean RMSE", "train median RMSE",
                  "MAE", "train median MAE", "CCC"]  # fmt: skip
        out.append((f"PHQ-8 regression on the interview twins ({where})", header, rows))
    rows = [[s["corpus"], s["twin"], str(len(s["seeds"])), _pm(s, f"{prefix}acc"),
             _pm(s, f"{base}majority_acc"), _pm(s, f"{prefix}macro_f1"),
             _pm(s, f"{base}majority_macro_f1"), _pm(s, f"{prefix}auroc")]
            for s in summary if s["task"] == "binary"]  # fmt: skip
    if rows:
        header = ["twin", "size", "seeds", "accuracy", "majority accuracy", "macro-F1",
                  "majority macro-F1", "AUROC"]  # fmt: skip
        out.append((f"Binary task on the interview twins ({where})", header, rows))
    return out


def bench_interview_tasks(
    conf_dir: str | Path,
    work_dir: str | Path,
    plan: str | TaskPlan = "full",
    workers: int = 1,
    on_row: Callable[[str], None] | None = None,
) -> dict:
    """Run ``plan`` (a name of :data:`PLANS` or a :class:`TaskPlan`); return its rows,
    their summary and the targets met or missed."""
    chosen = PLANS[plan] if isinstance(plan, str) else plan
    rows = run_jobs(plan_jobs(chosen), work_dir, conf_dir, workers, on_row)
    summary = summarize(rows)
    described = {"preset": chosen.preset, "sessions": list(chosen.sessions),
                 "seeds": list(chosen.seeds), "epochs": chosen.epochs,
                 "tasks": {t: list(TASKS[t]) for t in chosen.tasks},
                 "overrides": list(chosen.overrides)}  # fmt: skip
    return {"plan": described, "rows": rows, "summary": summary, "targets": targets(summary)}
