"""Training runs inside a benchmark: workers that share the cores quietly, a run whose
output goes to its log, and the validation scores of the epoch it selected.

Used by the benchmarks that train (:mod:`.interview_tasks`, the learnability plans).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import shutil
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig


def quiet_worker(threads: int) -> None:
    """Set up a worker process: it ends with its parent (Linux), uses ``threads`` torch
    and numba threads (more threads than cores in all workers together slow every one
    of them many times over), and logs library messages at errors only."""
    import numba
    import torch

    _die_with_parent()
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # the scan kernels
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "dynmultidep"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _die_with_parent() -> None:
    """Ask the kernel to end this process when its parent ends (Linux only)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Lightning traps SIGTERM)
    except (OSError, AttributeError):
        pass


def scored_run(run_dir: Path, row: dict, work: Callable[[io.StringIO], None]) -> dict:
    """Run ``work(log)`` (which trains and scores into ``row``) in a fresh ``run_dir``
    (an earlier attempt's is removed, never resumed); return ``row`` with ``error``
    (``None``, or the first line of what failed: a failed job is reported and the
    others go on) and ``seconds``. The log, with any traceback, goes to ``job.log``."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    row["error"] = None
    started = time.perf_counter()
    log_text = io.StringIO()
    try:
        work(log_text)
    except Exception as err:
        row["error"] = f"{type(err).__name__}: {err}".splitlines()[0]
        log_text.write(traceback.format_exc())
    row["seconds"] = time.perf_counter() - started
    (run_dir / "job.log").write_text(log_text.getvalue())
    return row


def train_logged(cfg: DictConfig, log_text: io.StringIO) -> None:
    """``src/train.py``'s training of ``cfg``, its output and warnings into ``log_text``."""
    from dynmultidep.tasks.train import train

    with (
        contextlib.redirect_stdout(log_text),
        contextlib.redirect_stderr(log_text),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        train(cfg)


def validation_scores(run_dir: Path, best_epoch: int | None) -> dict[str, float]:
    """``val/*`` of the selected epoch (names without ``val/``), from the run's
    ``csv/metrics.csv``; empty where the run logged none."""
    path = run_dir / "csv" / "metrics.csv"
    if best_epoch is None or not path.is_file():
        return {}
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle)
                if r.get("epoch") and int(r["epoch"]) == best_epoch]  # fmt: skip
    chosen = [r for r in rows if any(k.startswith("val/") and v for k, v in r.items())]
    if not chosen:
        return {}
    return {k[4:]: float(v) for k, v in chosen[-1].items() if k.startswith("val/") and v}
