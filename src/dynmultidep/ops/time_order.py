"""Time order of a padded batch: forward, or backwards within each sequence's length.

A backward-in-time pass (the bidirectional Mamba block's second direction)
reads step ``t`` of sample ``b`` at position ``lengths[b] - 1 - t`` while
``t < lengths[b]``; padded steps stay where they are, so they come after every
valid step and never enter the state of one. The fused CPU kernels read and
write by this index in place; :func:`reverse_within_length` is the plain
gather they are tested against, and what the other backends use.
"""

from __future__ import annotations

import torch
from torch import Tensor


def reverse_within_length(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse ``x: (B, L, ...)`` along time, each sample within its length.

    Steps at or beyond a sample's length stay where they are, so the map is
    its own inverse and never moves padding in front of valid steps.
    ``lengths=None`` means every sample is ``L`` steps long.
    """
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device)
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (B, L)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def kernel_lengths(lengths: Tensor | None, batch: int, length: int) -> Tensor:
    """``(B,)`` int64 CPU lengths for the kernels, clipped to ``L`` (all ``L`` for None)."""
    if lengths is None:
        return torch.full((batch,), length, dtype=torch.int64)
    return lengths.detach().to("cpu", torch.int64).clamp(0, length).contiguous()
