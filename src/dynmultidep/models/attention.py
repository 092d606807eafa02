"""Local multi-head attention: memory linear in L, for long vlogs.

Each step attends to the steps within ``window`` of it (before it only, when
``causal``), never to padding. Queries are processed in blocks of ``window``
steps against their own and neighbouring blocks, so the score tensor is
``(B, heads, L, 3 * window)`` instead of ``(B, heads, L, L)``; no ``L x L`` mask
is ever built. :class:`LocalAttention` is self-attention (a token mixer, and the
short-term branch of an MT expert); :class:`LocalCrossAttention` lets one
modality's steps attend to the other's within the same band (a fusion operation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def banded_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    lengths: Tensor | None,
    window: int,
    causal: bool = False,
    dropout: float = 0.0,
) -> Tensor:
    """Attention of each step to the valid steps within ``window`` of it.

    ``q, k, v: (B, H, L, hd)``, ``lengths: (B,)`` (None: all valid) ->
    ``(B, H, L, hd)``. A padded query still sees itself, so no row is empty;
    its output is whatever the caller zeroes.
    """
    batch, _, length, _ = q.shape
    w = window
    blocks = -(-length // w)
    pad = blocks * w - length
    q = F.pad(q, (0, 0, 0, pad)).unflatten(2, (blocks, w))  # (B, H, blocks, w, hd)
    # keys/values of the previous, own and next block: (B, H, blocks, 3w, hd)
    k, v = (F.pad(t, (0, 0, w, w + pad)).unfold(2, 3 * w, w).transpose(-1, -2) for t in (k, v))
    q_pos = torch.arange(blocks * w, device=q.device).view(blocks, w, 1)
    k_pos = (torch.arange(blocks, device=q.device) * w - w).view(blocks, 1, 1) + torch.arange(
        3 * w, device=q.device
    )
    limit = torch.full((batch,), length, device=q.device) if lengths is None else lengths
    valid = (k_pos >= 0) & (k_pos < limit.view(batch, 1, 1, 1).to(q.device))
    near = (q_pos - k_pos).abs() < w
    if causal:
        near = near & (k_pos <= q_pos)
    mask = (valid & near) | (q_pos == k_pos)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], dropout_p=dropout)
    return out.flatten(2, 3)[:, :, :length]


class _BandedHeads(nn.Module):
    """Shared by the self- and cross-attention layers: heads, window, the projections
    (``_projections``, per subclass) and the output projection."""

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

    def _heads(self, x: Tensor, parts: int) -> Tensor:
        """``(B, L, parts * d_model) -> (parts, B, H, L, hd)``."""
        batch, length, _ = x.shape
        return x.view(batch, length, parts, self.num_heads, -1).permute(2, 0, 3, 1, 4)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, lengths: Tensor | None) -> Tensor:
        """Heads in, ``(B, L, d_model)`` out (after ``out_proj``)."""
        dropout = self.dropout if self.training else 0.0
        out = banded_attention(q, k, v, lengths, self.window, self.causal, dropout)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class LocalAttention(_BandedHeads):
    """``(B, L, d_model) -> (B, L, d_model)`` banded self-attention with a key-padding mask."""

    def _projections(self, d_model: int) -> None:
        self.qkv = nn.Linear(d_model, 3 * d_model)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        q, k, v = self._heads(self.qkv(x), 3)
        return self._attend(q, k, v, lengths)


class LocalCrossAttention(_BandedHeads):
    """Steps of ``x`` attend to the steps of ``context`` within the band:
    ``x, context: (B, L, d_model) -> (B, L, d_model)`` (the two aligned step by step)."""

    def _projections(self, d_model: int) -> None:
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)

    def forward(self, x: Tensor, context: Tensor, lengths: Tensor | None = None) -> Tensor:
        (q,) = self._heads(self.q(x), 1)
        k, v = self._heads(self.kv(context), 2)
        return self._attend(q, k, v, lengths)
