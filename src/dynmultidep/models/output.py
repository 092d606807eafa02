"""What every model returns."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ModelOutput(NamedTuple):
    logits: Tensor  # (B,) depression logit (positive class = depression)
    gate: Tensor | None  # (B, E) expert weights, or None for models without a gate
    aux_loss: Tensor  # scalar added to the training loss (0 when unused)
    # In training, for models with label_losses(out, labels, pos_weight) (DynMultiDep):
    expert_logits: Tensor | None = None  # (B, E) each expert's own logit
    gate_logits: Tensor | None = None  # (B, E) the gate's logits
    # For DynMultiDep with a fusion-level gate: (B, K) weights of the fusion operations
    fusion_gate: Tensor | None = None
    # ... and in training with label_losses: (B, K) each fusion operation's own logit,
    # and the fusion gate's logits
    op_logits: Tensor | None = None
    fusion_gate_logits: Tensor | None = None
