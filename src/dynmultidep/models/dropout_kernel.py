"""Numba kernel of :mod:`dynmultidep.models.dropout`: ``out = x * keep * scale``.

Whether element ``i`` is kept is a pure function of ``i`` and two 32-bit keys:
``hash(hash(i + key1) ^ key2) >= threshold``, with ``hash`` a 32-bit integer
finaliser (xorshift-multiply, two rounds). So the mask is never stored: the
backward pass recomputes it, and a plain PyTorch version of the same function
(:func:`dynmultidep.models.dropout.keep_mask_reference`) gives the identical
mask. The kernel computes in unsigned 32-bit integers (every operation cast
back to ``uint32``, which the loops vectorise over), the reference in int64
masked to 32 bits: the same function.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.models.ssm.kernel_math import FASTMATH

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
