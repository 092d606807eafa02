"""Wall time and peak accelerator memory of each epoch, logged with the metrics.

``perf/train_epoch_s``: the training part of the epoch (its batches, data loading
included; validation excluded); ``perf/val_epoch_s``: the validation that follows;
``perf/peak_memory_mib``: on CUDA, the allocator's peak during the training part
(``torch.cuda.max_memory_allocated``, reset when the epoch starts). CUDA work is
synchronised at each boundary, once per epoch, so the times are the device's.
"""

from __future__ import annotations

import time

import lightning as L
import torch


class EpochResources(L.Callback):
    """Logs ``perf/train_epoch_s``, ``perf/val_epoch_s`` and (CUDA) ``perf/peak_memory_mib``;
    the last epoch's ``train_seconds`` and ``peak_mib`` stay readable (the benchmarks)."""

    def __init__(self):
        self._train_start: float | None = None
        self.train_seconds: float | None = None
        self.peak_mib: float | None = None
        self._val_start: float | None = None

    @staticmethod
    def _now(pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def _end_training_part(self, pl_module: L.LightningModule) -> None:
        if self._train_start is None or self.train_seconds is not None:
            return
        self.train_seconds = self._now(pl_module) - self._train_start
        if pl_module.device.type == "cuda":
            self.peak_mib = torch.cuda.max_memory_allocated(pl_module.device) / 2**20

    def on_train_epoch_start(self, trainer, pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        self.train_seconds = self.peak_mib = None
        self._train_start = self._now(pl_module)

    def on_validation_epoch_start(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self._end_training_part(pl_module)  # validation at the epoch's end
        self._val_start = self._now(pl_module)

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or self._val_start is None:
            return
        seconds = self._now(pl_module) - self._val_start
        self._val_start = None
        pl_module.log("perf/val_epoch_s", seconds, on_epoch=True, rank_zero_only=True)

    def on_train_epoch_end(self, trainer, pl_module):
        self._end_training_part(pl_module)  # no validation in this epoch
        if self.train_seconds is None:
            return
        pl_module.log("perf/train_epoch_s", self.train_seconds, on_epoch=True,
                      rank_zero_only=True)  # fmt: skip
        if self.peak_mib is not None:
            pl_module.log("perf/peak_memory_mib", self.peak_mib, on_epoch=True,
                          rank_zero_only=True)  # fmt: skip
