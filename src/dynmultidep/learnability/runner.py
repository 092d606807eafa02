"""Running a plan: its corpora first, then its jobs in parallel worker processes.

Small models on a CPU are dominated by per-batch overheads, so a few worker
processes with one torch thread each use the cores better than one process with
several threads. Each job's scores are written to ``<work_dir>/results/<key>.json``
as it ends; running a plan again skips the jobs whose results are there (with the
same overrides and the same composed config), so a long run can be interrupted
and resumed, and a changed default reruns what it changes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from dynmultidep.atomic import write_text_atomic
from dynmultidep.bench import compose_train
from dynmultidep.bench.runs import quiet_worker
from dynmultidep.data.synthetic import SuiteCorpus
from dynmultidep.learnability.jobs import (
    LearnabilityJob,
    ModelSpec,
    config_digest,
    ensure_corpus,
    run_job,
)
from dynmultidep.learnability.plan import SIZES, Plan


def plan_jobs(
    plan: Plan, specs: dict[str, Sequence[ModelSpec]] | None = None
) -> list[LearnabilityJob]:
    """The jobs of ``plan``; ``specs`` (size -> models) replaces the plan's models.

    Jobs are ordered so that the longest (D-Vlog size, expert models) start first.
    """
    by_size = specs or {size: [ModelSpec.parse(m) for m in models]
                        for size, models in plan.models.items()}  # fmt: skip
    jobs = [
        LearnabilityJob(family, size, SIZES[size], model, seed, plan.length_scale, plan.epochs,
            plan.overrides)
        for size, models in by_size.items()
        for model in models
        for family in plan.families
        for seed in plan.seeds
    ]  # fmt: skip
    cheap = ("functionals", "temporal_mean")
    return sorted(jobs, key=lambda j: (-SIZES[j.size], j.model.label in cheap))


def suite_jobs(
    corpora: Sequence[SuiteCorpus], models: Sequence[ModelSpec], seeds: Sequence[int],
    epochs: int | None = None, overrides: Sequence[str] = (),
) -> list[LearnabilityJob]:  # fmt: skip
    """Every model on every draw of the randomised suite with every training seed; the
    largest corpora and the expert models first."""
    jobs = [LearnabilityJob.of_draw(corpus, model, seed, epochs, overrides)
            for corpus in corpora for model in models for seed in seeds]  # fmt: skip
    cheap = ("functionals", "temporal_mean")
    return sorted(jobs, key=lambda j: (j.model.label in cheap, -j.n * j.length_scale))


def _result_path(work_dir: Path, job: LearnabilityJob) -> Path:
    return work_dir / "results" / f"{job.key}.json"


def cached_result(work_dir: Path, job: LearnabilityJob, conf_dir: str | Path) -> dict | None:
    """A finished job's stored scores, if it ran with the same settings and the same
    composed training config (:func:`~dynmultidep.learnability.jobs.config_digest`)."""
    path = _result_path(work_dir, job)
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if result.get("error") or {k: result.get(k) for k in job.describe()} != job.describe():
        return None
    if result.get("config") != config_digest(compose_train(conf_dir, job.overrides(work_dir))):
        return None
    return result


def _worker_job(job: LearnabilityJob, work_dir: str, conf_dir: str) -> dict:
    return run_job(job, work_dir, conf_dir)


def run_plan(
    jobs: Sequence[LearnabilityJob],
    work_dir: str | Path,
    conf_dir: str | Path,
    workers: int = 2,
    on_result: Callable[[dict, int, int], None] | None = None,
) -> list[dict]:
    """Run ``jobs`` (corpora generated first), ``workers`` at a time; return every
    job's scores, cached ones included. ``on_result(result, done, total)`` is called
    as each job ends."""
    work_dir = Path(work_dir)
    for job in jobs:
        ensure_corpus(job, work_dir)
    results = {job.key: cached_result(work_dir, job, conf_dir) for job in jobs}
    todo = [job for job in jobs if results[job.key] is None]
    done = len(jobs) - len(todo)
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=max(1, workers), mp_context=context,
        initializer=quiet_worker, initargs=(threads,),
    ) as pool:  # fmt: skip
        futures = {pool.submit(_worker_job, job, str(work_dir), str(conf_dir)): job
                   for job in todo}  # fmt: skip
        for future in as_completed(futures):
            job = futures[future]
            try:
                result = future.result()
            except Exception as err:  # the worker process itself died
                result = {**job.describe(), "key": job.key, "error": f"worker: {err}"}
            write_text_atomic(_result_path(work_dir, job), json.dumps(result, indent=2) + "\n")
            results[job.key] = result
            done += 1
            if on_result is not None:
                on_result(result, done, len(jobs))
    return [results[job.key] for job in jobs]
