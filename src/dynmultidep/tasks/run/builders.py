"""Objects built from config nodes: callbacks, loggers, the Trainer (and the fp32
arithmetic of GPUs it trains with)."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
import torch
from hydra.utils import instantiate


def instantiate_all(node: Mapping | None) -> list:
    """Instantiate every entry of ``node`` that has a ``_target_`` (``null`` entries switch
    one off: ``callbacks.early_stopping=null``)."""
    if not node:
        return []
    return [instantiate(v) for v in node.values() if isinstance(v, Mapping) and "_target_" in v]


def set_tf32(enabled: bool) -> None:
    """TF32 for fp32 matrix products and cuDNN convolutions (and RNNs, kept alike) on
    GPUs, or full fp32 (PyTorch's defaults differ: products off, convolutions on)."""
    if hasattr(torch.backends.cudnn, "conv"):  # torch >= 2.9: per-backend precision
        mode = "tf32" if enabled else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
        torch.backends.cudnn.rnn.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def build_trainer(cfg: Mapping) -> L.Trainer:
    """The Trainer of the ``trainer`` node of a run config, with the callbacks and loggers
    of its ``callbacks`` and ``logger`` nodes (``trainer.loggers`` lists the latter);
    ``tf32`` (default false) sets the GPUs' fp32 arithmetic (:func:`set_tf32`)."""
    set_tf32(bool(cfg.get("tf32", False)))
    loggers = instantiate_all(cfg.get("logger"))
    callbacks = instantiate_all(cfg.get("callbacks"))
    return instantiate(cfg["trainer"], callbacks=callbacks, logger=loggers or False)
