"""Distributed (DDP) runs: launching ranks from Hydra jobs, gathering, ending.

With ``strategy=ddp`` Lightning starts ranks 1.. by running the script again with
``sys.argv`` plus ``hydra.run.dir=<HydraConfig run.dir>``. Inside a multirun that
would start the whole sweep again (``-m`` and the sweep values are in ``sys.argv``)
in a new, time-stamped run directory. :func:`relaunch_as_this_job` rewrites both
before training starts: ``sys.argv`` becomes a single run of this job (its own
overrides, the config path/name flags kept) and ``run.dir`` this job's output
directory, so every rank runs this job's config and writes into its directory.

A multirun's jobs run one after another in one process; :func:`distributed_job`
also undoes what a job's DDP launch leaves behind (the process group, and the
``LOCAL_RANK``/``MASTER_PORT``... variables, which would make the next job
believe its ranks were started by someone else and wait for them forever).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from omegaconf import read_write

# Set by Lightning's launcher in the process that starts the other ranks.
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra flags that pick the config; they take a value (``-cn x`` or ``-cn=x``).
CONFIG_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")


def config_flags(argv: Sequence[str]) -> list[str]:
    """The config-choosing flags of ``argv`` (after the script), with their values."""
    kept, args = [], list(argv)
    for i, arg in enumerate(args):
        name = arg.split("=", 1)[0]
        if name in CONFIG_FLAGS:
            kept += [arg] if "=" in arg else args[i : i + 2]
    return kept


def relaunch_as_this_job() -> None:
    """Make processes Lightning launches for other ranks run this Hydra job, in its
    directory; nothing to do outside Hydra."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    sys.argv = [sys.argv[0], *config_flags(sys.argv[1:]), *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def gather_objects(value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (on every rank)."""
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, value)
    return gathered


@contextmanager
def distributed_job() -> Iterator[None]:
    """Run one training job that may launch DDP ranks: relaunch them as this job
    (:func:`relaunch_as_this_job`); afterwards destroy the process group and restore the
    launch variables to what they were (kept when a cluster manager such as SLURM or
    torchrun set them)."""
    relaunch_as_this_job()
    before = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
