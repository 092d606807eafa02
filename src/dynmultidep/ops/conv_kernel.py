"""Fused CPU kernels of the Mamba block's causal depthwise convolution, with its
bias and SiLU, compiled by numba (the reference is :func:`.causal_conv.causal_conv_reference`).

Sequences are channels-last, ``x, out: (batch, L, d_inner)``, the layout the
block computes in, so nothing is transposed; ``x`` may be a strided view (one
half of ``in_proj``'s output). ``wT: (K, d_inner)`` is the depthwise weight
transposed. One job covers one batch element and a block of ``TIME_BLOCK``
steps; the innermost loops run over contiguous channels, which LLVM vectorises
for the CPU numba compiles for, so their vector width follows the host by itself
(it carries nothing in registers from step to step: no blocking to choose, unlike
the scan's :mod:`dynmultidep.ops.host` shapes). With
``reverse``, step ``t`` of the convolution's order lies at position
``step_position(t, lengths[b], True)`` (backwards within the sequence's length,
padding in place): the kernels read and write by that index, so the backward
direction of a bidirectional block needs no reversed copies.

The backward pass recomputes the pre-activation instead of keeping it, writes
the gradient at the pre-activation once, then gathers the input gradient from
it; weight and bias gradients go to per-job partial sums the caller adds up.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.ops.kernel_cache import forget_stale
from dynmultidep.ops.kernel_math import FASTMATH, fast_exp, step_position

TIME_BLOCK = 64  # steps per job
_ONE = np.float32(1.0)


@numba.njit(inline="always", fastmath=FASTMATH)
def _pre_activation(x, wT, bias, has_bias, b, t, length, reverse, acc):
    """``acc[c] = bias[c] + sum_k wT[k, c] x[b, t - K + 1 + k, c]`` (zero before 0),
    steps taken at their positions."""
    taps, channels = wT.shape
    for c in range(channels):
        acc[c] = bias[c] if has_bias else 0.0
    for k in range(taps):
        s = t - taps + 1 + k
        if s >= 0:
            w_k = wT[k]
            x_s = x[b, step_position(s, length, reverse)]
            for c in range(channels):
                acc[c] += w_k[c] * x_s[c]


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def conv_forward(x, wT, bias, has_bias, silu, lengths, reverse, out):
    """``out = silu(causal_conv(x) + bias)`` (or without SiLU)."""
    batch, length, channels = x.shape
    blocks = (length + TIME_BLOCK - 1) // TIME_BLOCK
    for job in numba.prange(batch * blocks):
        b = job // blocks
        t0 = (job % blocks) * TIME_BLOCK
        n_b = lengths[b]
        acc = np.empty(channels, np.float32)
        for t in range(t0, min(length, t0 + TIME_BLOCK)):
            _pre_activation(x, wT, bias, has_bias, b, t, n_b, reverse, acc)
            o = out[b, step_position(t, n_b, reverse)]
            if silu:
                for c in range(channels):
                    o[c] = acc[c] / (_ONE + fast_exp(-acc[c]))
            else:
                for c in range(channels):
                    o[c] = acc[c]


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def conv_backward_pre(
    x, wT, bias, has_bias, silu, lengths, reverse, dout, dpre, dw_part, dbias_part
):  # fmt: skip
    """The gradient at the pre-activation ``dpre (batch, L, d_inner)``, and per-job
    partial sums of the weight ``dw_part (jobs, K, d_inner)`` and bias gradients
    ``dbias_part (jobs, d_inner)``."""
    batch, length, channels = x.shape
    taps = wT.shape[0]
    blocks = (length + TIME_BLOCK - 1) // TIME_BLOCK
    for job in numba.prange(batch * blocks):
        b = job // blocks
        t0 = (job % blocks) * TIME_BLOCK
        n_b = lengths[b]
        acc = np.empty(channels, np.float32)
        dw = dw_part[job]
        db = dbias_part[job]
        dw[:, :] = 0.0
        db[:] = 0.0
        for t in range(t0, min(length, t0 + TIME_BLOCK)):
            p = step_position(t, n_b, reverse)
            g = dpre[b, p]
            dy = dout[b, p]
            if silu:
                _pre_activation(x, wT, bias, has_bias, b, t, n_b, reverse, acc)
                for c in range(channels):
                    sig = _ONE / (_ONE + fast_exp(-acc[c]))
                    g[c] = dy[c] * sig * (_ONE + acc[c] * (_ONE - sig))
            else:
                for c in range(channels):
                    g[c] = dy[c]
            for c in range(channels):
                db[c] += g[c]
            for k in range(taps):
                s = t - taps + 1 + k
                if s >= 0:
                    x_s = x[b, step_position(s, n_b, reverse)]
                    dw_k = dw[k]
                    for c in range(channels):
                        dw_k[c] += g[c] * x_s[c]


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def conv_backward_input(wT, lengths, reverse, dpre, dx):
    """``dx[b, t, c] = sum_k wT[k, c] dpre[b, t + K - 1 - k, c]`` (zero past the end),
    steps taken at their positions."""
    batch, length, channels = dpre.shape
    taps = wT.shape[0]
    blocks = (length + TIME_BLOCK - 1) // TIME_BLOCK
    for job in numba.prange(batch * blocks):
        b = job // blocks
        t0 = (job % blocks) * TIME_BLOCK
        n_b = lengths[b]
        for t in range(t0, min(length, t0 + TIME_BLOCK)):
            g = dx[b, step_position(t, n_b, reverse)]
            for c in range(channels):
                g[c] = 0.0
            for k in range(taps):
                s = t + taps - 1 - k
                if s < length:
                    w_k = wT[k]
                    d_s = dpre[b, step_position(s, n_b, reverse)]
                    for c in range(channels):
                        g[c] += w_k[c] * d_s[c]


# numba checks this file alone for edits; forget_stale checks the helpers' files too
forget_stale(__name__, ("conv_forward", "conv_backward_pre", "conv_backward_input"))
