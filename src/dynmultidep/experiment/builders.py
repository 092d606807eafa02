"""Objects built from config nodes: callbacks, loggers (W&B offline by default), the Trainer."""

from __future__ import annotations

import logging
import netrc
import os
import sys
from collections.abc import Mapping

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger

log = logging.getLogger(__name__)


def instantiate_all(node: Mapping | None) -> list:
    """Instantiate every entry of ``node`` that has a ``_target_`` (``null`` entries switch
    one off: ``callbacks.early_stopping=null``)."""
    if not node:
        return []
    return [instantiate(v) for v in node.values() if isinstance(v, Mapping) and "_target_" in v]


def wandb_configured() -> bool:
    """Whether the user has given W&B credentials (environment or ``~/.netrc``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def wandb_logger(mode: str = "auto", **kwargs) -> Logger:
    """A Lightning ``WandbLogger`` that never blocks a run.

    ``mode``: ``online``, ``offline`` or ``auto`` (online only when the user has
    configured W&B credentials, else offline: no login, no network; sync later
    with ``wandb sync``). An explicit ``WANDB_MODE`` in the environment wins.
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
    os.makedirs(kwargs.get("save_dir", "."), exist_ok=True)
    log.info("W&B logging %s", "offline (sync later with `wandb sync`)" if offline else "online")
    return WandbLogger(offline=offline, **kwargs)


def close_loggers() -> None:
    """Finish the W&B run, if any, so that the next job of a multirun starts its own."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def build_trainer(cfg: Mapping) -> L.Trainer:
    """The Trainer of the ``trainer`` node of a run config, with the callbacks and loggers
    of its ``callbacks`` and ``logger`` nodes (``trainer.loggers`` lists the latter)."""
    loggers = instantiate_all(cfg.get("logger"))
    callbacks = instantiate_all(cfg.get("callbacks"))
    return instantiate(cfg["trainer"], callbacks=callbacks, logger=loggers or False)
