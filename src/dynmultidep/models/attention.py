"""Local multi-head attention layers: memory linear in L, for long vlogs.

:class:`LocalAttention` is self-attention (a token mixer, and the short-term
branch of an MT expert); :class:`LocalCrossAttention` lets one modality's steps
attend to the other's within the same band (a fusion operation). Both compute
the banded attention of :mod:`dynmultidep.ops.attention`: each step attends to
the steps within ``window`` of it (before it only, when ``causal``), never to
padding, through the fused CPU kernels where they apply and the plain reference
elsewhere (or with ``kernel = False`` on the layer).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynmultidep.ops.attention import banded_attention, fused_banded_attention, kernel_usable


class _BandedHeads(nn.Module):
    """Shared by the self- and cross-attention layers: heads, window, the projections
    (``_projections``, per subclass) and the output projection. ``kernel = False``
    runs the reference instead of the fused kernels (the training-step bench
    compares them)."""

    kernel = True

    def __init__(
        self,
        d_model: int,
        num_heads: int = 4,
        window: int = 128,
        causal: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        if window < 1:
            raise ValueError(f"the attention window must be at least 1 step, got {window}")
        self.num_heads = num_heads
        self.window = window
        self.causal = causal
        self.dropout = dropout
        self._projections(d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _projections(self, d_model: int) -> None:
        raise NotImplementedError

    def _attend(self, packed: Tensor, lengths: Tensor | None) -> Tensor:
        """``packed: (B, L, 3 * d_model)``, the ``[q | k | v]`` projections ->
        ``(B, L, d_model)`` (after ``out_proj``)."""
        dropout = self.dropout if self.training else 0.0
        if self.kernel and kernel_usable(packed, self.num_heads, self.window):
            out = fused_banded_attention(
                packed, lengths, self.num_heads, self.window, self.causal, dropout
            )
        else:
            batch, length, _ = packed.shape
            q, k, v = packed.view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
            out = banded_attention(q, k, v, lengths, self.window, self.causal, dropout)
            out = out.transpose(1, 2).flatten(2)
        return self.out_proj(out)


class LocalAttention(_BandedHeads):
    """``(B, L, d_model) -> (B, L, d_model)`` banded self-attention with a key-padding mask."""

    def _projections(self, d_model: int) -> None:
        self.qkv = nn.Linear(d_model, 3 * d_model)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self._attend(self.qkv(x), lengths)


class LocalCrossAttention(_BandedHeads):
    """Steps of ``x`` attend to the steps of ``context`` within the band:
    ``x, context: (B, L, d_model) -> (B, L, d_model)`` (the two aligned step by step)."""

    def _projections(self, d_model: int) -> None:
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)

    def forward(self, x: Tensor, context: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self._attend(torch.cat((self.q(x), self.kv(context)), -1), lengths)
