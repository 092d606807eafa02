"""Statistics over the valid steps of padded batches ``(B, L, D)`` with ``lengths (B,)``."""

from __future__ import annotations

import torch
from torch import Tensor


def valid_mask(x: Tensor, lengths: Tensor) -> Tensor:
    """``(B, L)`` True at the valid steps of ``x: (B, L, ...)``."""
    return torch.arange(x.shape[1], device=x.device) < lengths[:, None].to(x.device)


def zero_padding(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x: (B, L, D)`` with its padded steps set to 0 (unchanged when ``lengths`` is None)."""
    if lengths is None:
        return x
    return x * valid_mask(x, lengths)[..., None]


def masked_mean(x: Tensor, lengths: Tensor) -> Tensor:
    """Mean over the valid steps: ``x: (B, L, D)``, ``lengths: (B,)`` -> ``(B, D)``."""
    total = zero_padding(x, lengths).sum(1)
    return total / lengths[:, None].to(device=x.device, dtype=x.dtype).clamp_min(1)


def masked_mean_var(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (population) variance over the valid steps: ``(B, L, D) -> 2 x (B, D)``."""
    mean = masked_mean(x, lengths)
    return mean, masked_mean((x - mean[:, None]) ** 2, lengths)  # padding adds 0 after masking


def masked_mean_std(x: Tensor, lengths: Tensor, eps: float = 1e-6) -> Tensor:
    """Mean and standard deviation side by side: ``(B, L, D) -> (B, 2 D)``."""
    mean, var = masked_mean_var(x, lengths)
    return torch.cat([mean, torch.sqrt(var + eps)], dim=-1)


def step_deltas(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x_t - x_{t-1}`` over valid steps, 0 at the first step and in padding:
    ``(B, L, D) -> (B, L, D)``."""
    delta = torch.zeros_like(x)
    delta[:, 1:] = x[:, 1:] - x[:, :-1]
    return zero_padding(delta, lengths)
