"""What every model returns."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ModelOutput(NamedTuple):
    logits: Tensor  # (B,) depression logit (positive class = depression)
    gate: Tensor | None  # (B, E) expert weights, or None for models without a gate
    aux_loss: Tensor  # scalar added to the training loss (0 when unused)
