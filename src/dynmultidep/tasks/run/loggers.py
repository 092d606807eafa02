"""Experiment loggers that suit resumable runs: a CSV logger that appends, and a W&B
logger that never blocks a run and keeps one W&B run per run directory."""

from __future__ import annotations

import csv
import logging
import netrc
import os
import sys
import uuid
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from dynmultidep.atomic import write_text_atomic

log = logging.getLogger(__name__)

WANDB_ID_FILE = "wandb_run_id"


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing ``metrics.csv``; this one appends to it
    (the rows of a resumed run follow those written before the interruption)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = sorted(next(csv.reader(handle), []))


class AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` survives a resumed run: new rows are appended
    (a new column rewrites the file with the union of the columns)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def wandb_configured() -> bool:
    """Whether the user has given W&B credentials (environment or ``~/.netrc``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def wandb_run_id(save_dir: str | Path) -> str:
    """The W&B run id of the run directory ``save_dir``: read from ``save_dir/wandb_run_id``
    when an earlier (interrupted) run wrote it, else new and written there by rank 0."""
    path = Path(save_dir) / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    if rank_zero_only.rank == 0:
        write_text_atomic(path, run_id + "\n")
    return run_id


def wandb_logger(mode: str = "auto", **kwargs) -> Logger:
    """A Lightning ``WandbLogger`` that never blocks a run.

    ``mode``: ``online``, ``offline`` or ``auto`` (online only when the user has
    configured W&B credentials, else offline: no login, no network; sync later
    with ``wandb sync``). An explicit ``WANDB_MODE`` in the environment wins.
    A resumed run continues the W&B run of its directory (:func:`wandb_run_id`).
    """
    from lightning.pytorch.loggers import WandbLogger

    if mode not in ("auto", "online", "offline"):
        raise ValueError(f"logger mode must be auto, online or offline, got {mode!r}")
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode:
        offline = env_mode in ("offline", "dryrun", "disabled")
    elif mode == "auto":
        offline = not wandb_configured()
    else:
        offline = mode == "offline"
    save_dir = kwargs.get("save_dir", ".")
    os.makedirs(save_dir, exist_ok=True)
    kwargs.setdefault("id", wandb_run_id(save_dir))
    kwargs.setdefault("resume", "allow")
    log.info("W&B logging %s", "offline (sync later with `wandb sync`)" if offline else "online")
    return WandbLogger(offline=offline, **kwargs)


def close_loggers() -> None:
    """Finish the W&B run, if any, so that the next job of a multirun starts its own."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()
