"""The long-short router of an MT expert (MTEM): per sample, how much of the expert's
output comes from its long-term branch (Mamba blocks) and how much from its
short-term branch (local-window Transformer blocks).

The router reads the masked mean and standard deviation of the steps both branches
receive (the expert's projected input), so it decides before either branch runs.
``soft``: a softmax over the two branches; ``hard``: its one-hot in the forward pass
with the softmax's gradient (straight-through), and in eval only the chosen branch
runs; ``fixed``: 0.5 each, nothing learnt (the ablation).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynmultidep.models.gate import Gate
from dynmultidep.models.masking import masked_mean_std

ROUTERS = ("soft", "hard", "fixed")
BRANCHES = ("long", "short")


class LongShortRouter(nn.Module):
    """``x: (B, L, d_model), lengths: (B,) -> weights (B, 2)`` over (long, short); rows sum to 1."""

    def __init__(self, d_model: int, mode: str = "soft"):
        super().__init__()
        if mode not in ROUTERS:
            raise ValueError(f"unknown router {mode!r}; use one of {', '.join(ROUTERS)}")
        self.mode = mode
        self.gate = None
        if mode != "fixed":
            self.gate = Gate(2 * d_model, len(BRANCHES), hidden=d_model, hard=mode == "hard")
            last = self.gate.net[-1]
            nn.init.zeros_(last.weight)  # starts as the fixed half-and-half mix
            nn.init.zeros_(last.bias)

    @property
    def hard(self) -> bool:
        return self.mode == "hard"

    def skips(self) -> bool:
        """Whether a sample runs only its chosen branch (hard, in eval; see ``Gate.skips``)."""
        return self.gate is not None and self.gate.skips()

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        if self.gate is None:
            return x.new_full((x.shape[0], len(BRANCHES)), 0.5)
        return self.gate(torch.cat(masked_mean_std(x, lengths), dim=-1))
