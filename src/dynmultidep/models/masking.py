"""Statistics over the valid steps of padded batches ``(B, L, D)`` with ``lengths (B,)``.

One definition of each: the mean, the (population) variance, and the standard
deviation ``sqrt(var + STD_EPS)`` (the epsilon inside the root gives a constant
sequence a finite gradient), over the valid steps or under weights
(attentive pooling). The gates' inputs, the pooling layers and the functionals
all read these.
"""

from __future__ import annotations

import torch
from torch import Tensor

STD_EPS = 1e-5


def valid_mask(x: Tensor, lengths: Tensor) -> Tensor:
    """``(B, L)`` True at the valid steps of ``x: (B, L, ...)``."""
    return torch.arange(x.shape[1], device=x.device) < lengths[:, None].to(x.device)


def zero_padding(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x: (B, L, D)`` with its padded steps set to 0 (unchanged when ``lengths`` is None)."""
    if lengths is None:
        return x
    return x * valid_mask(x, lengths)[..., None]


def masked_mean(x: Tensor, lengths: Tensor) -> Tensor:
    """Mean over the valid steps: ``x: (B, L, D)``, ``lengths: (B,)`` -> ``(B, D)``
    (0 for a sample without valid steps)."""
    total = zero_padding(x, lengths).sum(1)
    return total / lengths[:, None].to(device=x.device, dtype=x.dtype).clamp_min(1)


def masked_mean_var(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (population) variance over the valid steps: ``(B, L, D) -> 2 x (B, D)``."""
    mean = masked_mean(x, lengths)
    return mean, masked_mean((x - mean[:, None]) ** 2, lengths)  # padding adds 0 after masking


def masked_mean_std(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation over the valid steps: ``(B, L, D) -> 2 x (B, D)``."""
    mean, var = masked_mean_var(x, lengths)
    return mean, torch.sqrt(var + STD_EPS)


def weighted_mean_std(x: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of ``x: (B, L, D)`` under ``weights: (B, L)`` that sum
    to 1 over each sample's valid steps (0 elsewhere) -> two ``(B, D)``."""
    w = weights[..., None]
    mean = (w * x).sum(1)
    var = (w * (x - mean[:, None]) ** 2).sum(1)
    return mean, torch.sqrt(var + STD_EPS)


def step_deltas(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``x_t - x_{t-1}`` over valid steps, 0 at the first step and in padding:
    ``(B, L, D) -> (B, L, D)``."""
    delta = torch.zeros_like(x)
    delta[:, 1:] = x[:, 1:] - x[:, :-1]
    return zero_padding(delta, lengths)
