"""Running extraction jobs in worker processes.

Each worker process loads its own models once (``spawn``: no forked copy of the
caller's threads) and reports its progress through a queue. A worker that
dies (a crash in native code) breaks the whole pool, failing every job in
flight; those jobs are run again, each alone in a fresh process, and only a
job that kills its process alone is reported failed. Ctrl-C cancels the jobs
not yet started.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from dynmultidep.features.jobs import Outcome, VideoJob, failed, run_job
from dynmultidep.features.pipeline import Extractor

_WORKER: dict = {}


def _init_worker(arguments: dict, messages) -> None:
    if arguments["settings"].audio == "vggish":
        import torch

        torch.set_num_threads(1)  # one process per core already
    _WORKER["extractor"] = Extractor(**arguments)
    _WORKER["messages"] = messages


def worker_job(job: VideoJob) -> Outcome:
    """Run ``job`` in a worker process, its progress sent to the parent."""
    messages = _WORKER["messages"]

    def report(done: int, total: int) -> None:
        messages.put((job.id, done, total))

    return run_job(_WORKER["extractor"], job, report)


class _Tracker:
    """Turns queue messages and finished futures into progress callbacks, once each."""

    def __init__(self, progress, messages):
        self.progress = progress
        self.messages = messages
        self.started: set[str] = set()
        self.finished: set[str] = set()
        self.outcomes: list[Outcome] = []

    def start(self, vlog_id: str) -> None:
        if vlog_id not in self.started:
            self.started.add(vlog_id)
            self.progress.start_video(vlog_id)

    def drain(self) -> None:
        while True:
            try:
                vlog_id, done, total = self.messages.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            if vlog_id not in self.finished:
                self.start(vlog_id)
                self.progress.video_step(vlog_id, done, total)

    def finish(self, outcome: Outcome) -> None:
        self.start(outcome.id)
        self.finished.add(outcome.id)
        self.outcomes.append(outcome)
        self.progress.end_video(outcome)


def run_parallel(
    jobs: Sequence[VideoJob],
    arguments: dict,
    workers: int,
    progress,
    worker: Callable[[VideoJob], Outcome] = worker_job,
) -> list[Outcome]:
    """The outcomes of ``jobs`` run in ``workers`` processes (see the module docstring).

    Args:
        arguments: the :class:`~.pipeline.Extractor`'s keyword arguments.
        progress: a :class:`~.corpus.Progress`.
        worker: the function a process runs per job (tests swap it).
    """
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    tracker = _Tracker(progress, messages)
    broken = _run_pool(jobs, min(workers, len(jobs)), context, arguments, tracker, worker)
    for job in broken:  # each alone: a job that breaks its own pool is the culprit
        if _run_pool([job], 1, context, arguments, tracker, worker):
            tracker.finish(
                failed(job, f"{job.source}: its worker process died while extracting it")
            )
    return tracker.outcomes


def _run_pool(jobs, size, context, arguments, tracker, worker) -> list[VideoJob]:
    """Run ``jobs`` in a pool of ``size``; return those a dead worker took down."""
    broken = []
    pool = ProcessPoolExecutor(
        size, context, initializer=_init_worker, initargs=(arguments, tracker.messages)
    )
    try:
        pending = {pool.submit(worker, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            tracker.drain()
            for future in done:
                job = pending.pop(future)
                try:
                    tracker.finish(future.result())
                except BrokenProcessPool:
                    broken.append(job)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        tracker.drain()
    return broken
