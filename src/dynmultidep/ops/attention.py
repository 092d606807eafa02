"""Banded multi-head attention, the operator of the local attention layers
(:mod:`dynmultidep.models.attention`): memory linear in L, for long vlogs.

Each step attends to the steps within ``window`` of it (before it only, when
``causal``), never to padding. Queries are processed in blocks of ``window``
steps against their own and neighbouring blocks, so the score tensor is
``(B, heads, L, 3 * window)`` instead of ``(B, heads, L, L)``; no ``L x L`` mask
is ever built.

On CPU (fp32, or bf16 computed in fp32) the layers run the fused numba kernels of
:mod:`.attention_kernel` (:func:`fused_banded_attention`), which read the
projections in place and keep no score tensor at all; :func:`banded_attention`
is their plain reference (PyTorch's ``scaled_dot_product_attention`` on the
blocks) and runs on other devices, or where a layer asks for it.
The kernels' dropout on the attention weights hashes each weight's index, as
:mod:`.dropout` does; ``keep`` gives the reference the same mask
(:func:`band_keep_mask`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dynmultidep.ops.backends import fused_available
from dynmultidep.ops.dropout import MAX_ELEMENTS, draw_keys, keep_mask_reference, threshold


def banded_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    lengths: Tensor | None,
    window: int,
    causal: bool = False,
    dropout: float = 0.0,
    keep: Tensor | None = None,
) -> Tensor:
    """Attention of each step to the valid steps within ``window`` of it.

    ``q, k, v: (B, H, L, hd)``, ``lengths: (B,)`` (None: all valid) ->
    ``(B, H, L, hd)``. A padded query still sees itself, so no row is empty;
    its output is whatever the caller zeroes. ``keep: (B, H, L, 2 * window - 1)``
    bool (offset ``s - t + window - 1`` of key ``s`` from query ``t``), with
    ``dropout``: the weights dropped are those it marks False, instead of a draw.
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
    if keep is None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], dropout_p=dropout)
    else:  # the weights of the blocks, dropped where ``keep`` says
        scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        weights = scores.masked_fill(~mask[:, None], float("-inf")).softmax(-1)
        band = 2 * w - 1
        keep = F.pad(keep, (0, 0, 0, pad)).unflatten(2, (blocks, w))  # (B, H, blocks, w, band)
        rows, cols = torch.arange(w, device=q.device), torch.arange(3 * w, device=q.device)
        offset = cols - rows[:, None] - 1  # of key column c from query row r: c - r - 1
        inside = (offset >= 0) & (offset < band)
        kept = keep.gather(-1, offset.clamp(0, band - 1).expand(*keep.shape[:-1], 3 * w)) & inside
        out = (weights * kept / (1.0 - dropout)) @ v
    return out.flatten(2, 3)[:, :, :length]


def band_keep_mask(shape: tuple[int, int, int], window: int, p: float, keys) -> Tensor:
    """``(B, H, L, 2 * window - 1)`` bool: the weights the kernels' dropout keeps, for
    ``shape = (B, H, L)``, in plain PyTorch (:func:`.dropout.keep_mask_reference`)."""
    band = 2 * window - 1
    return keep_mask_reference(shape[0] * shape[1] * shape[2] * band, p, keys).view(*shape, band)


def kernel_usable(packed: Tensor, heads: int, window: int) -> bool:
    """Whether :func:`fused_banded_attention` takes ``packed``: fp32 or bf16 on CPU,
    numba present, and the dropout's index within 32 bits."""
    batch, length, _ = packed.shape
    return (packed.device.type == "cpu" and packed.dtype in (torch.float32, torch.bfloat16)
            and batch * heads * length * (2 * window - 1) < MAX_ELEMENTS
            and fused_available())  # fmt: skip


def _lengths_array(lengths: Tensor | None, batch: int, length: int) -> np.ndarray:
    if lengths is None:
        return np.full(batch, length, np.int64)
    return lengths.detach().to("cpu", torch.int64).clamp(0, length).numpy()


class _FusedBanded(torch.autograd.Function):
    @staticmethod
    def forward(ctx, packed, lengths, heads, window, causal, p, keys):
        from dynmultidep.ops.attention_kernel import banded_forward

        x = packed.detach().float().contiguous()
        batch, length, width = x.shape
        hd = width // (3 * heads)
        lengths = _lengths_array(lengths, batch, length)
        drop = np.uint32(threshold(p) if p else 0)
        args = (heads, window, causal, np.float32(hd**-0.5), p > 0, drop,
                np.float32(1.0 / (1.0 - p)), *(np.uint32(k) for k in keys))  # fmt: skip
        out = torch.empty(batch, length, heads * hd)
        lse = torch.empty(batch, length, heads)
        with torch.profiler.record_function("banded_attention_forward"):  # named in profiles
            banded_forward(x.numpy(), lengths, *args, out.numpy(), lse.numpy())
        ctx.save_for_backward(x, lse)
        ctx.lengths, ctx.args, ctx.dtype = lengths, args, packed.dtype
        return out.to(packed.dtype)

    @staticmethod
    def backward(ctx, grad):
        from dynmultidep.ops.attention_kernel import banded_backward

        x, lse = ctx.saved_tensors
        dout = grad.float().contiguous()
        dx = torch.zeros_like(x)
        with torch.profiler.record_function("banded_attention_backward"):
            banded_backward(
                x.numpy(), ctx.lengths, *ctx.args, lse.numpy(), dout.numpy(), dx.numpy()
            )
        return dx.to(ctx.dtype), None, None, None, None, None, None


def fused_banded_attention(
    packed: Tensor,
    lengths: Tensor | None,
    heads: int,
    window: int,
    causal: bool = False,
    dropout: float = 0.0,
    keys: tuple[int, int] | None = None,
) -> Tensor:
    """:func:`banded_attention` from the projections as the linear layers wrote them:
    ``packed: (B, L, 3 * d)`` holds ``[q | k | v]`` -> ``(B, L, d)``, heads side by
    side (a padded query's output is 0). ``keys``: the dropout's two 32-bit keys
    (default: drawn from PyTorch's generator)."""
    if not 0 <= dropout < 1:
        raise ValueError(f"attention dropout must lie in [0, 1), got {dropout}")
    if dropout and keys is None:
        keys = draw_keys()
    return _FusedBanded.apply(packed, lengths, heads, window, causal, dropout, keys or (0, 0))
