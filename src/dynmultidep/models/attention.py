"""Local multi-head self-attention: memory linear in L, for long vlogs.

Each step attends to the steps within ``window`` of it (before it only, when
``causal``), never to padding. Queries are processed in blocks of ``window``
steps against their own and neighbouring blocks, so the score tensor is
``(B, heads, L, 3 * window)`` instead of ``(B, heads, L, L)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LocalAttention(nn.Module):
    """``(B, L, d_model) -> (B, L, d_model)`` banded self-attention with a key-padding mask."""

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
        self.num_heads = num_heads
        self.window = window
        self.causal = causal
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        batch, length, width = x.shape
        w = self.window
        blocks = -(-length // w)
        pad = blocks * w - length
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q = F.pad(q, (0, 0, 0, pad)).unflatten(2, (blocks, w))  # (B, H, blocks, w, hd)
        # keys/values of the previous, own and next block: (B, H, blocks, 3w, hd)
        k, v = (F.pad(t, (0, 0, w, w + pad)).unfold(2, 3 * w, w).transpose(-1, -2) for t in (k, v))
        q_pos = torch.arange(blocks * w, device=x.device).view(blocks, w, 1)
        k_pos = (torch.arange(blocks, device=x.device) * w - w).view(blocks, 1, 1) + torch.arange(
            3 * w, device=x.device
        )
        limit = torch.full((batch,), length, device=x.device) if lengths is None else lengths
        valid = (k_pos >= 0) & (k_pos < limit.view(batch, 1, 1, 1).to(x.device))
        near = (q_pos - k_pos).abs() < w
        if self.causal:
            near = near & (k_pos <= q_pos)
        mask = (valid & near) | (q_pos == k_pos)  # a padded query still sees itself: no empty row
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask[:, None], dropout_p=self.dropout if self.training else 0.0
        )
        out = out.flatten(2, 3)[:, :, :length].transpose(1, 2).reshape(batch, length, width)
        return self.out_proj(out)
