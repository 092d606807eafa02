"""Reproducible training: one seed fixes a whole run, also a resumed one.

Every random choice of a training run is a function of ``(seed, epoch, rank)``:

* ``lightning.seed_everything(seed, workers=True)`` fixes the initial weights;
* :class:`EpochSeeding` reseeds the global generators (torch, numpy, ``random``)
  at the start of every training epoch, so the dropout masks of epoch ``k`` do
  not depend on what ran before it: a run resumed from the checkpoint written
  after epoch ``k - 1`` draws what an uninterrupted run draws;
* data loaders draw from their own generator (``DepressionDataModule``), so
  iterating one (sanity check, validation) never moves the global generators;
* the length-bucketed sampler shuffles with ``(seed, epoch)``.

With ``trainer.deterministic`` (on in ``conf/trainer/default.yaml``) two CPU
runs of one config give bit-identical weights and metrics.
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed for one epoch of one rank, well mixed from the three integers."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def reseed(seed: int) -> None:
    """Seed torch (CPU and every GPU), numpy's global generator and ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the global generator is what gets reseeded)
    random.seed(seed)


class EpochSeeding(L.Callback):
    """Reseed the global generators with ``epoch_seed(seed, epoch, rank)`` at the start
    of every training epoch.

    Args:
        seed: the run's seed (``${seed}``).
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        reseed(epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank))
