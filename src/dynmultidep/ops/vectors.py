"""Explicit float32 vector registers for the numba kernels.

numba vectorises inner loops over arrays by itself, but every value it carries
from one iteration of an outer loop to the next goes through memory: a scan's
states are loaded and stored at every step. A :data:`vector` is one SIMD
register of :data:`WIDTH` float32 lanes as a numba value, so a kernel can keep
states in local variables, which LLVM keeps in registers:

* ``load(row, j)`` and ``store(row, j, v)``: lanes ``row[j : j + WIDTH]`` of a
  contiguous 1-D float32 array (no bounds check: the caller pads);
* ``splat(x)``: a float32 in every lane; ``aligned_empty(rows, cols)``: a
  tile whose rows start on a cache line;
* ``+``, ``-``, ``*``, ``/`` between vectors, or a vector and a float32;
  ``vmin``, ``vmax``; :func:`exp` by
  :func:`dynmultidep.ops.kernel_math.fast_exp`'s method, lane by lane
  (the two agree to an ulp), and :func:`sigmoid` and :func:`softplus` as
  ``kernel_math`` computes them;
* ``transpose_block(src, r, c, dst, r2, c2, flip_in, flip_out)``: a
  ``WIDTH x WIDTH`` block of one 2-D array transposed into another, in registers;
* ``wide_registers()``: asks LLVM for 512-bit registers in the calling
  function. LLVM's tuning for recent Intel server cores prefers 256-bit
  vectors; AVX-512 hosts run the kernels' loops about twice as wide with it.

``WIDTH`` is the lanes of the process's kernel shape
(:func:`dynmultidep.ops.host.kernel_shape`): 16 (one AVX-512 register), 8 (one
AVX2 register) or 4 (128 bits, everywhere else), unless a shape is forced.
Floating-point operations carry the kernels' ``fastmath`` flags, except
reassociation, which would undo :func:`exp`'s rounding.
"""

from __future__ import annotations

import operator

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, models, overload, register_model

from dynmultidep.ops.host import kernel_shape
from dynmultidep.ops.kernel_math import (
    ATANH_SERIES,
    EXP2_POLY,
    FASTMATH,
    LOG2E,
    ONE,
    TWO,
    Y_HI,
    Y_LO,
    ZERO,
)

WIDTH = kernel_shape().lanes  # see dynmultidep.ops.host
# no "reassoc": it would fold (y + _ROUND) - _ROUND into y and undo the rounding
_FLAGS = tuple(sorted(FASTMATH - {"reassoc"}))
_LANES = ir.VectorType(ir.FloatType(), WIDTH)
_INTS = ir.VectorType(ir.IntType(32), WIDTH)
# y + _ROUND rounds y to an integer k (ties to even, as np.rint) and holds k + 127 in
# its low mantissa bits; shifted left by 23 those bits are the float 2^k.
_ROUND = np.float32(1.5 * 2**23 + 127)


class VectorType(types.Type):
    """The numba type of a register of ``WIDTH`` float32 lanes."""

    def __init__(self):
        super().__init__(name=f"float32x{WIDTH}")


vector = VectorType()


@register_model(VectorType)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _LANES)


def _is_contiguous(ty, ndim: int) -> bool:
    """A C-contiguous float32 array of ``ndim`` dimensions (a row of a C-contiguous
    array is one)."""
    return (
        isinstance(ty, types.Array)
        and ty.ndim == ndim
        and ty.layout == "C"
        and ty.dtype == types.float32
    )


def _lane_pointer(context, builder, row_type, row, j):
    data = context.make_array(row_type)(context, builder, row).data
    return builder.bitcast(builder.gep(data, [j]), _LANES.as_pointer())


@intrinsic
def load(typingctx, row, j):
    """``row[j : j + WIDTH]`` as a vector."""
    if not (_is_contiguous(row, 1) and isinstance(j, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ptr = _lane_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load(ptr, align=4, typ=_LANES)

    return vector(row, j), codegen


@intrinsic
def store(typingctx, row, j, value):
    """``row[j : j + WIDTH] = value``."""
    if not (_is_contiguous(row, 1) and isinstance(j, types.Integer) and value == vector):
        return None

    def codegen(context, builder, sig, args):
        ptr = _lane_pointer(context, builder, sig.args[0], args[0], args[1])
        builder.store(args[2], ptr, align=4)
        return context.get_dummy_value()

    return types.none(row, j, value), codegen


def _splat_value(context, builder, ty, value):
    if ty == vector:
        return value
    scalar = context.cast(builder, value, ty, types.float32)
    lanes = builder.insert_element(ir.Constant(_LANES, ir.Undefined), scalar, ir.IntType(32)(0))
    return builder.shuffle_vector(lanes, lanes, ir.Constant(_INTS, [0] * WIDTH))


@intrinsic
def splat(typingctx, x):
    """``x`` (a float32) in every lane."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, sig, args):
        return _splat_value(context, builder, sig.args[0], args[0])

    return vector(x), codegen


def _operands(lhs, rhs) -> bool:
    """Vector with vector, or with a float32 on either side."""
    sides = (lhs, rhs)
    return vector in sides and all(t == vector or t == types.float32 for t in sides)


def _lanewise(emit):
    """An intrinsic applying ``emit(builder, a, b)`` lane by lane."""

    def typer(typingctx, lhs, rhs):
        if not _operands(lhs, rhs):
            return None

        def codegen(context, builder, sig, args):
            (lhs_type, rhs_type), (a, b) = sig.args, args
            a = _splat_value(context, builder, lhs_type, a)
            return emit(builder, a, _splat_value(context, builder, rhs_type, b))

        return vector(lhs, rhs), codegen

    return intrinsic(typer)


_add = _lanewise(lambda builder, a, b: builder.fadd(a, b, flags=_FLAGS))
_sub = _lanewise(lambda builder, a, b: builder.fsub(a, b, flags=_FLAGS))
_mul = _lanewise(lambda builder, a, b: builder.fmul(a, b, flags=_FLAGS))
_div = _lanewise(lambda builder, a, b: builder.fdiv(a, b, flags=_FLAGS))
vmin = _lanewise(
    lambda builder, a, b: builder.select(builder.fcmp_ordered("<", a, b, flags=_FLAGS), a, b)
)
vmax = _lanewise(
    lambda builder, a, b: builder.select(builder.fcmp_ordered(">", a, b, flags=_FLAGS), a, b)
)
vmin.__doc__ = "Lane-wise minimum."
vmax.__doc__ = "Lane-wise maximum."


def _overload_operator(op, impl):
    @overload(op, inline="always")
    def _typed(lhs, rhs):
        if _operands(lhs, rhs):
            return lambda lhs, rhs: impl(lhs, rhs)
        return None


for _op, _impl in (
    (operator.add, _add),
    (operator.sub, _sub),
    (operator.mul, _mul),
    (operator.truediv, _div),
):
    _overload_operator(_op, _impl)


@intrinsic
def _power_of_two(typingctx, rounded):
    """``2^k`` from ``rounded = y + _ROUND`` (see :data:`_ROUND`): its bits shifted
    left by 23, reinterpreted as floats."""
    if rounded != vector:
        return None

    def codegen(context, builder, sig, args):
        bits = builder.bitcast(args[0], _INTS)
        shifted = builder.shl(bits, ir.Constant(_INTS, [23] * WIDTH))
        return builder.bitcast(shifted, _LANES)

    return vector(rounded), codegen


@numba.njit(inline="always")
def _reduce(y):
    """The range reduction of ``2^y``: ``y`` clamped, and ``rounded = y + _ROUND``
    (``k = rint(y)`` in its low bits), and ``f = y - k`` in [-1/2, 1/2]."""
    y = vmin(vmax(y, Y_LO), Y_HI)
    rounded = y + _ROUND
    return rounded, y - (rounded - _ROUND)


@numba.njit(inline="always")
def exp2_scaled(y):
    """``2^y`` lane by lane for a vector ``y = x log2(e)``: ``fast_exp``'s method,
    with the multiply by log2(e) left to the caller (it folds into ``A``)."""
    rounded, f = _reduce(y)
    p = f * EXP2_POLY[6] + EXP2_POLY[5]
    for c in range(4, -1, -1):
        p = p * f + EXP2_POLY[c]
    return p * _power_of_two(rounded)


@numba.njit(inline="always")
def exp2_scaled4(y0, y1, y2, y3):
    """:func:`exp2_scaled` of four vectors, the same operations lane by lane (the
    same bits), written stage by stage across the four: each stage's four
    operations are independent, so the core overlaps the four dependency chains
    (about 40 cycles each) instead of waiting on one at a time. The scan's state
    groups take their decays this way (BENCHMARKS.md, "Kernel shapes and hosts")."""
    r0, f0 = _reduce(y0)
    r1, f1 = _reduce(y1)
    r2, f2 = _reduce(y2)
    r3, f3 = _reduce(y3)
    p0 = f0 * EXP2_POLY[6] + EXP2_POLY[5]
    p1 = f1 * EXP2_POLY[6] + EXP2_POLY[5]
    p2 = f2 * EXP2_POLY[6] + EXP2_POLY[5]
    p3 = f3 * EXP2_POLY[6] + EXP2_POLY[5]
    for c in range(4, -1, -1):
        k = EXP2_POLY[c]
        p0, p1, p2, p3 = p0 * f0 + k, p1 * f1 + k, p2 * f2 + k, p3 * f3 + k
    return (p0 * _power_of_two(r0), p1 * _power_of_two(r1), p2 * _power_of_two(r2),
            p3 * _power_of_two(r3))  # fmt: skip


@numba.njit(inline="always")
def exp(x):
    """``exp(x)`` lane by lane, as ``fast_exp`` computes it."""
    return exp2_scaled(x * LOG2E)


@numba.njit(inline="always")
def sigmoid(x):
    """``1 / (1 + exp(-x))`` lane by lane, as ``kernel_math.sigmoid``."""
    return ONE / (exp2_scaled(x * -LOG2E) + ONE)


@numba.njit(inline="always")
def softplus(x):
    """``log(1 + exp(x))`` lane by lane, as ``kernel_math.fast_softplus``:
    ``max(x, 0) + log1p(exp(-|x|))`` by the same odd series."""
    y = exp2_scaled(vmin(x, x * -ONE) * LOG2E)  # exp(-|x|), in (0, 1]
    s = y / (y + TWO)
    s2 = s * s
    p = s2 * ATANH_SERIES[0] + ATANH_SERIES[1]
    p = p * s2 + ATANH_SERIES[2]
    p = p * s2 + ATANH_SERIES[3]
    p = p * s2 + ATANH_SERIES[4]
    p = p * s2 + ATANH_SERIES[5]
    p = p * s2 + ONE
    return vmax(x, ZERO) + s * p * TWO


def _transpose_lanes(builder, rows):
    """The ``WIDTH x WIDTH`` block held in ``rows`` (one vector per row), transposed:
    at each level ``s`` (``WIDTH/2``, ..., 2, 1) rows ``i`` and ``i + s`` swap the
    lanes with bit ``s`` set in row ``i`` for those with it clear in row ``i + s``."""
    rows = list(rows)
    s = WIDTH // 2
    while s:
        low = [lane if not lane & s else lane - s + WIDTH for lane in range(WIDTH)]
        high = [lane + s if not lane & s else lane + WIDTH for lane in range(WIDTH)]
        for i in range(WIDTH):
            if not i & s:
                a, b = rows[i], rows[i + s]
                rows[i] = builder.shuffle_vector(a, b, ir.Constant(_INTS, low))
                rows[i + s] = builder.shuffle_vector(a, b, ir.Constant(_INTS, high))
        s //= 2
    return rows


def _row_pointer(context, builder, matrix_type, matrix, row, col):
    """Pointer to ``matrix[row, col]`` (C-contiguous) as a pointer to a vector."""
    array = context.make_array(matrix_type)(context, builder, matrix)
    cols = builder.extract_value(array.shape, 1)
    index = builder.add(builder.mul(row, cols), col)
    return builder.bitcast(builder.gep(array.data, [index]), _LANES.as_pointer())


@intrinsic(prefer_literal=True)
def transpose_block(typingctx, src, src_row, src_col, dst, dst_row, dst_col, flip_in, flip_out):
    """``dst[dst_row + i, dst_col + k] = src[src_row + k, src_col + i]`` for ``i, k <
    WIDTH``: a block moved between a channel-major and a time-major array in
    registers (``WIDTH`` loads, shuffles, ``WIDTH`` stores; no bounds check). With
    ``flip_in`` the source rows are taken in reverse order (``k -> WIDTH - 1 - k``),
    with ``flip_out`` the destination rows are (``i -> WIDTH - 1 - i``): how a block
    of a backward-in-time scan is read or written. The flags are literal booleans."""
    ints = (src_row, src_col, dst_row, dst_col)
    flags = (flip_in, flip_out)
    if not (_is_contiguous(src, 2) and _is_contiguous(dst, 2)
            and all(isinstance(t, types.Integer) for t in ints)
            and all(isinstance(f, types.BooleanLiteral) for f in flags)):  # fmt: skip
        return None
    reverse_in, reverse_out = (f.literal_value for f in flags)

    def codegen(context, builder, sig, args):
        src_type, dst_type = sig.args[0], sig.args[3]
        r0, c0, d0, e0 = (context.cast(builder, args[i], sig.args[i], types.intp)
                          for i in (1, 2, 4, 5))  # fmt: skip
        intp = context.get_value_type(types.intp)
        loaded = []
        for k in range(WIDTH):
            row = builder.add(r0, intp(WIDTH - 1 - k if reverse_in else k))
            ptr = _row_pointer(context, builder, src_type, args[0], row, c0)
            loaded.append(builder.load(ptr, align=4, typ=_LANES))
        for i, vec in enumerate(_transpose_lanes(builder, loaded)):
            row = builder.add(d0, intp(WIDTH - 1 - i if reverse_out else i))
            builder.store(vec, _row_pointer(context, builder, dst_type, args[3], row, e0),
                          align=4)  # fmt: skip
        return context.get_dummy_value()

    return types.none(*((src, src_row, src_col, dst, dst_row, dst_col) + flags)), codegen


_LINE_FLOATS = 16  # float32 per 64-byte cache line


@numba.njit(inline="always")
def aligned_empty(rows, cols):
    """``np.empty((rows, cols), np.float32)`` starting on a cache line, so that with
    ``cols`` a multiple of ``WIDTH`` no register load of a row straddles two lines
    (numba's ``np.empty`` aligns to 32 bytes only)."""
    buf = np.empty(rows * cols + _LINE_FLOATS, np.float32)
    skip = (-(buf.ctypes.data // 4)) % _LINE_FLOATS
    return buf[skip : skip + rows * cols].reshape((rows, cols))


@intrinsic
def wide_registers(typingctx):
    """Let LLVM use 512-bit registers in the function that calls this (a no-op on
    hosts without AVX-512). Call it inside a ``prange`` body: numba outlines it."""

    def codegen(context, builder, sig, args):
        attributes = builder.function.attributes
        for name in ('"prefer-vector-width"="512"', '"min-legal-vector-width"="512"'):
            set.add(attributes, name)  # string attributes, which llvmlite does not list
        return context.get_dummy_value()

    return types.none(), codegen


__all__ = [
    "WIDTH", "vector", "load", "store", "splat", "vmin", "vmax", "exp", "exp2_scaled",
    "exp2_scaled4",
    "sigmoid", "softplus", "wide_registers", "aligned_empty", "transpose_block",
]  # fmt: skip
