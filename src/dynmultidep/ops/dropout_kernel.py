"""Numba kernel of :mod:`dynmultidep.ops.dropout`: ``out = x * keep * scale``.

Whether element ``i`` is kept is a pure function of ``i`` and two 32-bit keys:
``hash(hash(i + key1) ^ key2) >= threshold``, with ``hash`` a 32-bit integer
finaliser (xorshift-multiply, two rounds). So the mask is never stored: the
backward pass recomputes it, and a plain PyTorch version of the same function
(:func:`dynmultidep.ops.dropout.keep_mask_reference`) gives the identical
mask. The kernel computes in unsigned 32-bit integers (every operation cast
back to ``uint32``, which the loops vectorise over), the reference in int64
masked to 32 bits: the same function.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.ops.kernel_cache import forget_stale
from dynmultidep.ops.kernel_math import FASTMATH

BLOCK = 1 << 16  # elements per job
_U = np.uint32
MUL1 = _U(0x7FEB352D)
MUL2 = _U(0x846CA68B)
_S15, _S16 = _U(15), _U(16)


@numba.njit(inline="always")
def mix32(x):
    """A bijective finaliser of the ``uint32`` ``x``."""
    x = _U(x ^ (x >> _S16))
    x = _U(x * MUL1)
    x = _U(x ^ (x >> _S15))
    x = _U(x * MUL2)
    return _U(x ^ (x >> _S16))


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def masked_scale(x, out, threshold, scale, key1, key2):
    """``out[i] = x[i] * scale`` where element ``i`` is kept, else 0 (flat fp32
    arrays; ``threshold``, ``key1``, ``key2`` uint32, ``scale`` float32)."""
    n = x.shape[0]
    for job in numba.prange((n + BLOCK - 1) // BLOCK):
        for i in range(job * BLOCK, min(n, (job + 1) * BLOCK)):
            h = mix32(_U(mix32(_U(_U(i) + key1)) ^ key2))
            out[i] = x[i] * scale if h >= threshold else np.float32(0.0)


_ROUND, _ONE = _U(0x7FFF), _U(1)
_ABS, _INF_BITS, _QNAN16 = _U(0x7FFFFFFF), _U(0x7F800000), np.uint16(0x7FC0)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def masked_scale_bf16(x, out, threshold, scale, key1, key2):
    """:func:`masked_scale` on bf16 data held as ``uint16`` bit patterns: each
    element is widened to fp32 (its bits shifted up), scaled in fp32 and rounded
    back to the nearest bf16, ties to even, NaN to a quiet NaN, as PyTorch casts.
    No fp32 copy of the tensor is made: a block at a time goes through a buffer."""
    n = x.shape[0]
    for job in numba.prange((n + BLOCK - 1) // BLOCK):
        start = job * BLOCK
        size = min(n, start + BLOCK) - start
        bits = np.empty(size, np.uint32)
        values = bits.view(np.float32)
        for j in range(size):
            bits[j] = _U(x[start + j]) << _S16
        for j in range(size):
            h = mix32(_U(mix32(_U(_U(start + j) + key1)) ^ key2))
            values[j] = values[j] * scale if h >= threshold else np.float32(0.0)
        for j in range(size):  # integer rounding: fastmath cannot drop the NaN test
            b = bits[j]
            rounded = np.uint16((b + _ROUND + ((b >> _S16) & _ONE)) >> _S16)
            out[start + j] = _QNAN16 if (b & _ABS) > _INF_BITS else rounded


# numba checks this file alone for edits; forget_stale checks the helpers' files too
forget_stale(__name__, ("masked_scale", "masked_scale_bf16"))
