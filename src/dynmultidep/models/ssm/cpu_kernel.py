"""Fused CPU kernels of the selective scan, compiled by numba: the backward pass.

Sequence tensors come in either layout, told by ``channels_last``:
``u, delta, z, out: (batch, L, d_inner)`` and ``B, C: (batch, L, N)`` when
true, ``(batch, d_inner, L)`` and ``(batch, N, L)`` (mamba_ssm's layout) when
false. ``AT: (N, d_inner)`` is A transposed.

The backward pass, and the tiles both passes use (the forward pass, with its
states in registers, is :mod:`dynmultidep.models.ssm.forward_kernel`).

One job walks the whole sequence for one batch element and a block of ``LANES``
channels (it keeps a chunk's states and decays per block), ``chunk`` steps at a
time: it copies the chunk's inputs into small time-major tiles, so the innermost
loops always run over contiguous channels and vectorise (lanes = channels). For
mamba_ssm's layout that copy is an in-cache transposition, which costs about a
third of the backward pass; the channels-last layout avoids it, and copies rows
a vector register at a time. A backward-in-time scan (``reverse``) reads and
writes every row at its position within the sequence's length.

What makes it fast, and why:

* the arithmetic of :mod:`dynmultidep.models.ssm.kernel_math` (a polynomial
  ``exp`` that vectorises);
* the forward pass saves the state at the start of every ``chunk`` steps
  only; the backward pass recomputes one chunk's states at a time and walks
  it in reverse, so memory stays O(batch x L x d_inner), never x N;
* channels beyond ``d_inner`` in the last block are zero-padded in the
  tiles: with ``u = delta = 0`` their state stays 0 and nothing is written;
* sums over channels (gradients of the shared ``B`` and ``C``) go to
  per-job partial buffers that the caller adds up, so jobs never race.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.models.ssm.kernel_math import (
    FASTMATH,
    ONE,
    ZERO,
    fast_exp,
    fast_softplus,
    sigmoid,
)
from dynmultidep.models.ssm.vectors import WIDTH, load, store

LANES = 64  # channels per backward job: eight AVX2 vectors of float32


@numba.njit(inline="always", fastmath=FASTMATH)
def _prepare_delta(tile, steps, bias, softplus):
    """``delta <- softplus(delta + bias)`` in place on the first ``steps`` rows."""
    for s in range(steps):
        row = tile[s]
        for j in range(tile.shape[1]):
            v = row[j] + bias[j]
            row[j] = fast_softplus(v) if softplus else v


@numba.njit(inline="always")
def step_position(t, length, reverse):
    """Where step ``t`` of the scan order lies in its sequence: at ``t``, or with
    ``reverse`` backwards within the sequence's ``length`` (padding stays in place,
    as :func:`dynmultidep.models.time_order.reverse_within_length` does)."""
    if reverse and t < length:
        return length - 1 - t
    return t


@numba.njit(inline="always")
def _copy_row(dst, d0, src, s0, n):
    """``dst[d0 : d0 + n] = src[s0 : s0 + n]`` for contiguous rows, a register at a time."""
    full = n - n % WIDTH
    for j in range(0, full, WIDTH):
        store(dst, d0 + j, load(src, s0 + j))
    for j in range(full, n):
        dst[d0 + j] = src[s0 + j]


@numba.njit(inline="always")
def _load(x, b, t0, c0, steps, width, channels_last, tile, length, reverse):
    """``tile[s, j] = x[b, p, c0 + j]`` (or ``x[b, c0 + j, p]``) at the position ``p``
    of step ``t0 + s`` (:func:`step_position`), zero beyond."""
    if width < tile.shape[1] or steps < tile.shape[0]:
        tile[:] = ZERO
    if channels_last:
        for s in range(steps):
            _copy_row(tile[s], 0, x[b, step_position(t0 + s, length, reverse)], c0, width)
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
            _copy_row(x[b, step_position(t0 + s, length, reverse)], c0, tile[s], 0, width)
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
                        sig = sigmoid(zt[j])
                        dy[j] = gt[j] * zt[j] * sig
                        gt[j] = gt[j] * ys[j] * sig * (ONE + zt[j] * (ONE - sig))  # dz
                for j in range(LANES):
                    dD[j] += dy[j] * ut[j]
                    acc_dt[j] = ZERO
                    acc_gb[j] = ZERO
                for n in range(n_state):
                    bn = b_t[s, n]
                    cn = c_t[s, n]
                    a_row = a_blk[n]
                    gn = g[n]
                    prev = states[s, n]
                    cur = states[s + 1, n]
                    an = decay[s, n]
                    dAn = dA[n]
                    sum_c = ZERO
                    sum_b = ZERO
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
                        acc_dt[j] *= ONE - fast_exp(-dt[j])
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
