"""Objects built from config nodes: callbacks, loggers, the Trainer."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
from hydra.utils import instantiate


def instantiate_all(node: Mapping | None) -> list:
    """Instantiate every entry of ``node`` that has a ``_target_`` (``null`` entries switch
    one off: ``callbacks.early_stopping=null``)."""
    if not node:
        return []
    return [instantiate(v) for v in node.values() if isinstance(v, Mapping) and "_target_" in v]


def build_trainer(cfg: Mapping) -> L.Trainer:
    """The Trainer of the ``trainer`` node of a run config, with the callbacks and loggers
    of its ``callbacks`` and ``logger`` nodes (``trainer.loggers`` lists the latter)."""
    loggers = instantiate_all(cfg.get("logger"))
    callbacks = instantiate_all(cfg.get("callbacks"))
    return instantiate(cfg["trainer"], callbacks=callbacks, logger=loggers or False)
