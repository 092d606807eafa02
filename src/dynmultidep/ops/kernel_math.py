"""The scalar helpers the numba kernels share (scan, convolution, dropout,
attention): a vectorisable ``exp``, softplus and sigmoid in float32, the kernels'
``fastmath`` flags, and :func:`step_position` (where a backward-in-time walk
reads a step).

* ``fast_exp`` is a polynomial ``exp`` (``2^k 2^f``, a degree-6 polynomial for
  ``2^f``; as accurate as the exp of its argument moved by an ulp); a libm call
  per element would stop a loop from vectorising.
* The flags are numba's per-instruction ``fastmath`` flags (no ``-ffast-math``
  process-wide flush-to-zero).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

FASTMATH = {"nnan", "ninf", "nsz", "arcp", "contract", "afn", "reassoc"}

_F = np.float32
LOG2E = _F(1.4426950408889634)
# exp(x) = 2^k 2^f with y = x log2(e), k = rint(y), f = y - k in [-1/2, 1/2]; 2^f by a
# degree-6 polynomial fitted for relative error on that interval. Relative error about
# 1.2e-7 + 7e-8 |x| (tested against float64): 2 ulp plus the rounding of y, i.e. the exp
# of x moved by about an ulp. y is clamped to [-125.9, 127.4] so 2^k stays normal.
Y_LO, Y_HI = _F(-125.9), _F(127.4)
EXP2_POLY = tuple(_F(c) for c in (1.0, 0.6931471824645996, 0.24022646248340607,
                              0.05550329014658928, 0.009618519805371761,
                              0.0013399859890341759, 0.00015337577497120947))  # fmt: skip
ZERO, ONE, TWO = _F(0.0), _F(1.0), _F(2.0)
# odd series of atanh: log1p(y) = 2 atanh(y / (2 + y)), |y / (2 + y)| <= 1/3 on [0, 1]
ATANH_SERIES = tuple(_F(1.0 / k) for k in (13, 11, 9, 7, 5, 3))


@intrinsic
def _float_from_bits(typingctx, bits):
    """Reinterpret an int32's bits as a float32 (a free, vectorisable bitcast)."""
    signature = types.float32(types.int32)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return signature, codegen


@numba.njit(inline="always", fastmath=FASTMATH)
def fast_exp(x):
    """float32 ``exp(x)``, clamped to about [exp(-87.3), exp(88.3)]."""
    y = min(max(x * LOG2E, Y_LO), Y_HI)
    k = np.rint(y)
    f = y - k
    p = EXP2_POLY[6]
    p = p * f + EXP2_POLY[5]
    p = p * f + EXP2_POLY[4]
    p = p * f + EXP2_POLY[3]
    p = p * f + EXP2_POLY[2]
    p = p * f + EXP2_POLY[1]
    p = p * f + EXP2_POLY[0]
    return p * _float_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))


@numba.njit(inline="always", fastmath=FASTMATH)
def fast_softplus(x):
    """float32 ``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(-|x|))``."""
    y = fast_exp(-abs(x))  # in (0, 1]
    s = y / (TWO + y)
    s2 = s * s
    p = ATANH_SERIES[0]
    p = p * s2 + ATANH_SERIES[1]
    p = p * s2 + ATANH_SERIES[2]
    p = p * s2 + ATANH_SERIES[3]
    p = p * s2 + ATANH_SERIES[4]
    p = p * s2 + ATANH_SERIES[5]
    p = p * s2 + ONE
    return max(x, ZERO) + TWO * s * p


@numba.njit(inline="always", fastmath=FASTMATH)
def sigmoid(x):
    """float32 ``1 / (1 + exp(-x))``."""
    return ONE / (ONE + fast_exp(-x))


@numba.njit(inline="always")
def step_position(t, length, reverse):
    """Where step ``t`` of the scan order lies in its sequence: at ``t``, or with
    ``reverse`` backwards within the sequence's ``length`` (padding stays in place,
    as :func:`dynmultidep.ops.time_order.reverse_within_length` does)."""
    if reverse and t < length:
        return length - 1 - t
    return t
