"""Fused CPU kernels of the selective scan, compiled by numba.

Sequence tensors come in either layout, told by ``channels_last``:
``u, delta, z, out: (batch, L, d_inner)`` and ``B, C: (batch, L, N)`` when
true, ``(batch, d_inner, L)`` and ``(batch, N, L)`` (mamba_ssm's layout) when
false. ``AT: (N, d_inner)`` is A transposed.

One job walks the whole sequence for one batch element and a block of
``FORWARD_LANES`` (forward) or ``LANES`` (backward, which keeps a chunk's
states and decays per block) channels, ``chunk`` steps at a time: it copies the chunk's inputs
into small time-major tiles, so the innermost loops always run over ``LANES``
contiguous channels and vectorise (AVX2/AVX-512 lanes = channels). For
mamba_ssm's layout that copy is an in-cache transposition, which costs about
a third of the backward pass; the channels-last layout avoids it. The
states of a block stay in cache. A backward-in-time scan (``reverse``) reads
and writes every row at its position within the sequence's length.

What makes it fast, and why:

* ``fast_exp`` is a polynomial ``exp`` (``2^k 2^f``, a degree-6 polynomial
  for ``2^f``; as accurate as the exp of its argument moved by an ulp); a
  libm call per element would stop the loop from vectorising.
* The forward pass saves the state at the start of every ``chunk`` steps
  only; the backward pass recomputes one chunk's states at a time and walks
  it in reverse, so memory stays O(batch x L x d_inner), never x N.
* Channels beyond ``d_inner`` in the last block are zero-padded in the
  tiles: with ``u = delta = 0`` their state stays 0 and nothing is written.
* Sums over channels (gradients of the shared ``B`` and ``C``) go to
  per-job partial buffers that the caller adds up, so jobs never race.

Floating-point flags are numba's per-instruction ``fastmath`` flags (no
``-ffast-math`` process-wide flush-to-zero).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LANES = 64  # channels per backward job: eight AVX2 vectors of float32
FORWARD_LANES = 256  # channels per forward job: more work per row read (measured faster)
FASTMATH = {"nnan", "ninf", "nsz", "arcp", "contract", "afn", "reassoc"}

_F = np.float32
_LOG2E = _F(1.4426950408889634)
# exp(x) = 2^k 2^f with y = x log2(e), k = rint(y), f = y - k in [-1/2, 1/2]; 2^f by a
# degree-6 polynomial fitted for relative error on that interval. Relative error about
# 1.2e-7 + 7e-8 |x| (tested against float64): 2 ulp plus the rounding of y, i.e. the exp
# of x moved by about an ulp. y is clamped to [-125.9, 127.4] so 2^k stays normal.
_Y_LO, _Y_HI = _F(-125.9), _F(127.4)
_EXP2 = tuple(_F(c) for c in (1.0, 0.6931471824645996, 0.24022646248340607,
                              0.05550329014658928, 0.009618519805371761,
                              0.0013399859890341759, 0.00015337577497120947))  # fmt: skip
_ZERO, _HALF, _ONE, _TWO = _F(0.0), _F(0.5), _F(1.0), _F(2.0)
# odd series of atanh: log1p(y) = 2 atanh(y / (2 + y)), |y / (2 + y)| <= 1/3 on [0, 1]
_Q = tuple(_F(1.0 / k) for k in (13, 11, 9, 7, 5, 3))


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
    y = min(max(x * _LOG2E, _Y_LO), _Y_HI)
    k = np.rint(y)
    f = y - k
    p = _EXP2[6]
    p = p * f + _EXP2[5]
    p = p * f + _EXP2[4]
    p = p * f + _EXP2[3]
    p = p * f + _EXP2[2]
    p = p * f + _EXP2[1]
    p = p * f + _EXP2[0]
    return p * _float_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))


@numba.njit(inline="always", fastmath=FASTMATH)
def fast_softplus(x):
    """float32 ``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(-|x|))``."""
    y = fast_exp(-abs(x))  # in (0, 1]
    s = y / (_TWO + y)
    s2 = s * s
    p = _Q[0]
    p = p * s2 + _Q[1]
    p = p * s2 + _Q[2]
    p = p * s2 + _Q[3]
    p = p * s2 + _Q[4]
    p = p * s2 + _Q[5]
    p = p * s2 + _ONE
    return max(x, _ZERO) + _TWO * s * p


@numba.njit(inline="always", fastmath=FASTMATH)
def _prepare_delta(tile, steps, bias, softplus):
    """``delta <- softplus(delta + bias)`` in place on the first ``steps`` rows."""
    for s in range(steps):
        row = tile[s]
        for j in range(tile.shape[1]):
            v = row[j] + bias[j]
            row[j] = fast_softplus(v) if softplus else v


@numba.njit(inline="always", fastmath=FASTMATH)
def _sigmoid(x):
    return _ONE / (_ONE + fast_exp(-x))


@numba.njit(inline="always")
def step_position(t, length, reverse):
    """Where step ``t`` of the scan order lies in its sequence: at ``t``, or with
    ``reverse`` backwards within the sequence's ``length`` (padding stays in place,
    as :func:`dynmultidep.models.time_order.reverse_within_length` does)."""
    if reverse and t < length:
        return length - 1 - t
    return t


@numba.njit(inline="always")
def _load(x, b, t0, c0, steps, width, channels_last, tile, length, reverse):
    """``tile[s, j] = x[b, p, c0 + j]`` (or ``x[b, c0 + j, p]``) at the position ``p``
    of step ``t0 + s`` (:func:`step_position`), zero beyond."""
    if width < tile.shape[1] or steps < tile.shape[0]:
        tile[:] = _ZERO
    if channels_last:
        for s in range(steps):
            tile[s, :width] = x[b, step_position(t0 + s, length, reverse), c0 : c0 + width]
    elif reverse:
        for j in range(width):
            for s in range(steps):
                tile[s, j] = x[b, c0 + j, step_position(t0 + s, length, reverse)]
    else:
        for j in range(width):
            tile[:steps, j] = x[b, c0 + j, t0 : t0 + steps]


@numba.njit(inline="always")
def _store(tile, x, b, t0, c0, steps, width, channels_last, length, reverse):
    """The inverse of :func:`_load`, for the valid part of the tile."""
    if channels_last:
        for s in range(steps):
            x[b, step_position(t0 + s, length, reverse), c0 : c0 + width] = tile[s, :width]
    elif reverse:
        for j in range(width):
            for s in range(steps):
                x[b, c0 + j, step_position(t0 + s, length, reverse)] = tile[s, j]
    else:
        for j in range(width):
            x[b, c0 + j, t0 : t0 + steps] = tile[:steps, j]


@numba.njit(inline="always")
def _block_parameters(AT, D, bias, has_D, d0, w, lanes):
    """``A (N, lanes)``, ``D (lanes,)`` and ``bias (lanes,)`` of one channel
    block, zero-padded past ``w`` channels."""
    a_blk = np.zeros((AT.shape[0], lanes), np.float32)
    a_blk[:, :w] = AT[:, d0 : d0 + w]
    d_blk = np.zeros(lanes, np.float32)
    if has_D:
        d_blk[:w] = D[d0 : d0 + w]
    bias_blk = np.zeros(lanes, np.float32)
    bias_blk[:w] = bias[d0 : d0 + w]
    return a_blk, d_blk, bias_blk


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def scan_forward(
    u, delta, AT, B, C, D, z, bias, has_D, has_z, softplus, channels_last, lengths, reverse,
    chunk, out, chunk_states, last_state,
):  # fmt: skip
    """Forward pass; ``delta`` is raw, ``softplus(delta + bias)`` is taken on the fly.

    Writes ``out`` (the layout of ``u``), the state at the start of every
    chunk ``chunk_states (batch, n_chunks, N, d_inner)`` and ``last_state
    (batch, N, d_inner)``.
    """
    n_state, channels = AT.shape
    batch = u.shape[0]
    length = u.shape[1] if channels_last else u.shape[2]
    blocks = (channels + FORWARD_LANES - 1) // FORWARD_LANES
    for job in numba.prange(batch * blocks):
        b = job // blocks
        n_b = lengths[b]
        d0 = (job % blocks) * FORWARD_LANES
        w = min(FORWARD_LANES, channels - d0)
        a_blk, d_blk, bias_blk = _block_parameters(AT, D, bias, has_D, d0, w, FORWARD_LANES)
        h = np.zeros((n_state, FORWARD_LANES), np.float32)
        u_t = np.empty((chunk, FORWARD_LANES), np.float32)
        dt_t = np.empty((chunk, FORWARD_LANES), np.float32)
        z_t = np.empty((chunk, FORWARD_LANES), np.float32)
        y_t = np.empty((chunk, FORWARD_LANES), np.float32)
        b_t = np.empty((chunk, n_state), np.float32)
        c_t = np.empty((chunk, n_state), np.float32)
        dtu = np.empty(FORWARD_LANES, np.float32)
        y = np.empty(FORWARD_LANES, np.float32)
        for t0 in range(0, length, chunk):
            steps = min(chunk, length - t0)
            chunk_states[b, t0 // chunk, :, d0 : d0 + w] = h[:, :w]
            _load(u, b, t0, d0, steps, w, channels_last, u_t, n_b, reverse)
            _load(delta, b, t0, d0, steps, w, channels_last, dt_t, n_b, reverse)
            _prepare_delta(dt_t, steps, bias_blk, softplus)
            _load(B, b, t0, 0, steps, n_state, channels_last, b_t, n_b, reverse)
            _load(C, b, t0, 0, steps, n_state, channels_last, c_t, n_b, reverse)
            if has_z:
                _load(z, b, t0, d0, steps, w, channels_last, z_t, n_b, reverse)
            for s in range(steps):
                dt = dt_t[s]
                ut = u_t[s]
                for j in range(FORWARD_LANES):
                    dtu[j] = dt[j] * ut[j]
                    y[j] = d_blk[j] * ut[j]
                for n in range(n_state):
                    bn = b_t[s, n]
                    cn = c_t[s, n]
                    a_row = a_blk[n]
                    hn = h[n]
                    for j in range(FORWARD_LANES):
                        v = fast_exp(dt[j] * a_row[j]) * hn[j] + dtu[j] * bn
                        hn[j] = v
                        y[j] += cn * v
                if has_z:
                    zt = z_t[s]
                    for j in range(FORWARD_LANES):
                        y[j] *= zt[j] * _sigmoid(zt[j])
                y_t[s] = y
            _store(y_t, out, b, t0, d0, steps, w, channels_last, n_b, reverse)
        last_state[b, :, d0 : d0 + w] = h[:, :w]


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def scan_backward(
    u, delta, AT, B, C, D, z, bias, has_D, has_z, softplus, channels_last, lengths, reverse,
    chunk, chunk_states, dout, dlast, has_dlast, du, ddelta, dz, dA_part, dB_part, dC_part,
    dD_part, dbias_part,
):  # fmt: skip
    """Backward pass: gradients of every input.

    ``du, ddelta, dz`` take the layout of ``u``; the rest are partial sums for
    the caller to reduce: ``dA_part (batch, N, d_inner)``,
    ``dB_part, dC_part (batch, blocks, L, N)``, ``dD_part, dbias_part
    (batch, d_inner)``. ``ddelta`` is the gradient of the raw ``delta``; with
    ``softplus`` it uses ``sigmoid(x) = 1 - exp(-softplus(x))``.
    """
    n_state, channels = AT.shape
    batch = u.shape[0]
    length = u.shape[1] if channels_last else u.shape[2]
    blocks = (channels + LANES - 1) // LANES
    n_chunks = (length + chunk - 1) // chunk
    for job in numba.prange(batch * blocks):
        b = job // blocks
        n_b = lengths[b]
        blk = job % blocks
        d0 = blk * LANES
        w = min(LANES, channels - d0)
        a_blk, d_blk, bias_blk = _block_parameters(AT, D, bias, has_D, d0, w, LANES)
        u_t = np.empty((chunk, LANES), np.float32)
        dt_t = np.empty((chunk, LANES), np.float32)
        z_t = np.empty((chunk, LANES), np.float32)
        g_t = np.empty((chunk, LANES), np.float32)  # incoming gradient, then dz
        y_t = np.empty((chunk, LANES), np.float32)  # C.h + D u
        du_t = np.empty((chunk, LANES), np.float32)
        ddt_t = np.empty((chunk, LANES), np.float32)
        b_t = np.empty((chunk, n_state), np.float32)
        c_t = np.empty((chunk, n_state), np.float32)
        states = np.zeros((chunk + 1, n_state, LANES), np.float32)  # states[s + 1] = h_{t0 + s}
        decay = np.empty(
            (chunk, n_state, LANES), np.float32
        )  # exp(delta A), kept for the reverse walk
        g = np.zeros((n_state, LANES), np.float32)  # dLoss/dh_t from later steps
        if has_dlast:
            g[:, :w] = dlast[b, :, d0 : d0 + w]
        dA = np.zeros((n_state, LANES), np.float32)
        dD = np.zeros(LANES, np.float32)
        dbias = np.zeros(LANES, np.float32)
        dy = np.empty(LANES, np.float32)
        dtu = np.empty(LANES, np.float32)
        acc_du = np.empty(LANES, np.float32)
        acc_dt = np.empty(LANES, np.float32)
        acc_gb = np.empty(LANES, np.float32)
        for c in range(n_chunks - 1, -1, -1):
            t0 = c * chunk
            steps = min(chunk, length - t0)
            _load(u, b, t0, d0, steps, w, channels_last, u_t, n_b, reverse)
            _load(delta, b, t0, d0, steps, w, channels_last, dt_t, n_b, reverse)
            _prepare_delta(dt_t, steps, bias_blk, softplus)
            _load(dout, b, t0, d0, steps, w, channels_last, g_t, n_b, reverse)
            _load(B, b, t0, 0, steps, n_state, channels_last, b_t, n_b, reverse)
            _load(C, b, t0, 0, steps, n_state, channels_last, c_t, n_b, reverse)
            if has_z:
                _load(z, b, t0, d0, steps, w, channels_last, z_t, n_b, reverse)
            states[0, :, :w] = chunk_states[b, c, :, d0 : d0 + w]
            for s in range(steps):  # recompute the chunk's states, and C.h + D u for the gate
                dt = dt_t[s]
                ut = u_t[s]
                ys = y_t[s]
                for j in range(LANES):
                    dtu[j] = dt[j] * ut[j]
                    ys[j] = d_blk[j] * ut[j]
                for n in range(n_state):
                    bn = b_t[s, n]
                    cn = c_t[s, n]
                    a_row = a_blk[n]
                    prev = states[s, n]
                    cur = states[s + 1, n]
                    an = decay[s, n]
                    for j in range(LANES):
                        a = fast_exp(dt[j] * a_row[j])
                        an[j] = a
                        v = a * prev[j] + dtu[j] * bn
                        cur[j] = v
                        ys[j] += cn * v
            for s in range(steps - 1, -1, -1):
                p = step_position(t0 + s, n_b, reverse)
                dt = dt_t[s]
                ut = u_t[s]
                gt = g_t[s]
                for j in range(LANES):
                    dtu[j] = dt[j] * ut[j]
                    dy[j] = gt[j]
                if has_z:  # out = (C.h + D u) silu(z)
                    zt = z_t[s]
                    ys = y_t[s]
                    for j in range(LANES):
                        sig = _sigmoid(zt[j])
                        dy[j] = gt[j] * zt[j] * sig
                        gt[j] = gt[j] * ys[j] * sig * (_ONE + zt[j] * (_ONE - sig))  # dz
                for j in range(LANES):
                    dD[j] += dy[j] * ut[j]
                    acc_dt[j] = _ZERO
                    acc_gb[j] = _ZERO
                for n in range(n_state):
                    bn = b_t[s, n]
                    cn = c_t[s, n]
                    a_row = a_blk[n]
                    gn = g[n]
                    prev = states[s, n]
                    cur = states[s + 1, n]
                    an = decay[s, n]
                    dAn = dA[n]
                    sum_c = _ZERO
                    sum_b = _ZERO
                    for j in range(LANES):
                        sum_c += dy[j] * cur[j]
                        gj = gn[j] + cn * dy[j]  # dLoss/dh_t in full
                        ga_prev = gj * an[j] * prev[j]
                        acc_dt[j] += ga_prev * a_row[j]
                        dAn[j] += ga_prev * dt[j]
                        acc_gb[j] += gj * bn
                        sum_b += gj * dtu[j]
                        gn[j] = gj * an[j]  # carried to h_{t-1}
                    dC_part[b, blk, p, n] = sum_c
                    dB_part[b, blk, p, n] = sum_b
                for j in range(LANES):  # sum_n g B enters through delta u
                    acc_du[j] = dy[j] * d_blk[j] + acc_gb[j] * dt[j]
                    acc_dt[j] += acc_gb[j] * ut[j]
                if softplus:
                    for j in range(LANES):
                        acc_dt[j] *= _ONE - fast_exp(-dt[j])
                for j in range(LANES):
                    dbias[j] += acc_dt[j]
                du_t[s] = acc_du
                ddt_t[s] = acc_dt
            _store(du_t, du, b, t0, d0, steps, w, channels_last, n_b, reverse)
            _store(ddt_t, ddelta, b, t0, d0, steps, w, channels_last, n_b, reverse)
            if has_z:
                _store(g_t, dz, b, t0, d0, steps, w, channels_last, n_b, reverse)
        dA_part[b, :, d0 : d0 + w] = dA[:, :w]
        dD_part[b, d0 : d0 + w] = dD[:w]
        dbias_part[b, d0 : d0 + w] = dbias[:w]
