"""Learning-rate schedules, built from config as ``_partial_`` callables."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: Optimizer, max_epochs: int, warmup_epochs: int = 0, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Linear warm-up over ``warmup_epochs``, then cosine decay to ``min_lr_ratio x lr``
    at the end of ``max_epochs``; stepped once per epoch.

    With ``warmup_epochs=0`` and ``min_lr_ratio=0`` this is ``CosineAnnealingLR(T_max=max_epochs)``.
    """
    if max_epochs < 1 or not 0 <= warmup_epochs < max(max_epochs, 1):
        raise ValueError(
            f"need 0 <= warmup_epochs < max_epochs, got {warmup_epochs} and {max_epochs}"
        )

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        progress = min(1.0, (epoch - warmup_epochs) / (max_epochs - warmup_epochs))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
