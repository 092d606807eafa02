"""The fused CPU forward pass of the selective scan, with its states in registers.

Same job layout, tiles and layouts as the backward pass
(:mod:`dynmultidep.ops.scan.cpu_kernel`): a job walks one batch element and a
block of ``lanes`` channels (whole rows where the batch gives enough jobs:
:func:`~dynmultidep.ops.scan.cpu_kernel.job_lanes`), ``chunk`` steps at a time,
from time-major tiles. Within a chunk the work is ordered so that nothing carried from step to
step touches memory:

* the block's channels are taken :data:`~dynmultidep.ops.vectors.WIDTH`
  at a time (one vector register), and its ``N`` states ``STATES`` at a time
  (``N`` is zero-padded to a multiple of ``STATES``: a state with ``A = B = 0``
  stays 0 and adds nothing);
* for one such group of lanes and states, the states, ``A`` and the running
  output of each step are vector variables, which LLVM keeps in registers, over
  the chunk's steps; only the step's inputs are loaded and ``C h + D u`` is
  stored, once per ``STATES`` states;
* ``A`` is multiplied by log2(e) once per job, so each state update is a
  multiply, an exponential and three multiply-adds; the four states' exponentials
  are computed side by side (:func:`~dynmultidep.ops.vectors.exp2_scaled4`), and
  ``y_t`` starts as ``D u`` (:func:`_skip_term`), so the groups' loops are alike.

The column strip of a lane group (``chunk`` rows of one register) stays in L1
across the state groups. The softplus of ``delta`` and the gate ``silu(z)`` run
once per chunk over whole rows, a register at a time; in the channels-last layout
they read ``delta`` and ``z`` (and write ``out``) straight from the rows
(:func:`~dynmultidep.ops.scan.cpu_kernel._load_delta`,
:func:`~dynmultidep.ops.scan.cpu_kernel._store_gated`).
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.ops.host import kernel_shape
from dynmultidep.ops.kernel_cache import forget_stale
from dynmultidep.ops.kernel_math import FASTMATH, LOG2E, ZERO
from dynmultidep.ops.scan.cpu_kernel import _block_parameters, _load, _load_delta, _store_gated
from dynmultidep.ops.vectors import (
    WIDTH,
    aligned_empty,
    exp2_scaled4,
    load,
    store,
    wide_registers,
)

STATES = kernel_shape().scan_states  # states per register group (dynmultidep.ops.host)


@numba.njit(inline="always")
def _state_group(h, a_blk, dt_t, u_t, b_t, c_t, y_t, g, q, steps):
    """Advance states ``q .. q + STATES - 1`` of lane group ``g`` through a chunk's
    ``steps``, adding ``C h`` to ``y_t`` (which starts as ``D u``). Each step is
    ``h <- exp(dt A) h + dt u B`` per state, with ``a_blk`` holding ``A log2(e)``
    and the four decays from one :func:`~dynmultidep.ops.vectors.exp2_scaled4`."""
    h0, h1, h2, h3 = load(h[q], g), load(h[q + 1], g), load(h[q + 2], g), load(h[q + 3], g)
    a0, a1, a2, a3 = (
        load(a_blk[q], g), load(a_blk[q + 1], g), load(a_blk[q + 2], g), load(a_blk[q + 3], g)
    )  # fmt: skip
    for s in range(steps):
        dt = load(dt_t[s], g)
        dtu = dt * load(u_t[s], g)
        bs = b_t[s]
        cs = c_t[s]
        e0, e1, e2, e3 = exp2_scaled4(dt * a0, dt * a1, dt * a2, dt * a3)
        h0 = e0 * h0 + dtu * bs[q]
        h1 = e1 * h1 + dtu * bs[q + 1]
        h2 = e2 * h2 + dtu * bs[q + 2]
        h3 = e3 * h3 + dtu * bs[q + 3]
        y = load(y_t[s], g)
        store(y_t[s], g, y + h0 * cs[q] + h1 * cs[q + 1] + h2 * cs[q + 2] + h3 * cs[q + 3])
    store(h[q], g, h0)
    store(h[q + 1], g, h1)
    store(h[q + 2], g, h2)
    store(h[q + 3], g, h3)


@numba.njit(inline="always")
def _skip_term(y_t, u_t, d_blk, steps):
    """``y_t <- D u`` on the first ``steps`` rows, where the state groups add ``C h``."""
    for s in range(steps):
        ys = y_t[s]
        us = u_t[s]
        for j in range(0, ys.shape[0], WIDTH):
            store(ys, j, load(d_blk, j) * load(us, j))


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def scan_forward(
    u, delta, AT, B, C, D, z, bias, has_D, has_z, softplus, channels_last, lengths, reverse,
    chunk, lanes, out, chunk_states, last_state,
):  # fmt: skip
    """Forward pass; ``delta`` is raw, ``softplus(delta + bias)`` is taken on the fly.

    Writes ``out`` (the layout of ``u``), the state at the start of every
    chunk ``chunk_states (batch, n_chunks, N, d_inner)`` (unless it has no
    chunks: inference) and ``last_state (batch, N, d_inner)``. One
    :func:`_forward_job` per batch element and block of ``lanes`` channels (a
    multiple of ``WIDTH``), in parallel.
    """
    blocks = (AT.shape[1] + lanes - 1) // lanes
    for job in numba.prange(u.shape[0] * blocks):
        _forward_job(
            job // blocks, (job % blocks) * lanes, u, delta, AT, B, C, D, z, bias, has_D,
            has_z, softplus, channels_last, lengths, reverse, chunk, lanes, out, chunk_states,
            last_state,
        )  # fmt: skip


@numba.njit(fastmath=FASTMATH, cache=True)
def _forward_job(
    b, d0, u, delta, AT, B, C, D, z, bias, has_D, has_z, softplus, channels_last, lengths,
    reverse, chunk, lanes, out, chunk_states, last_state,
):  # fmt: skip
    """One job of :func:`scan_forward`: batch element ``b``, channels from ``d0``.

    A function of its own, not the body of the parallel loop, so that numba's
    parallel passes see one call (they took most of the compilation otherwise).
    """
    wide_registers()
    n_state, channels = AT.shape
    padded = -(-n_state // STATES) * STATES
    length = u.shape[1] if channels_last else u.shape[2]
    n_b = lengths[b]
    w = min(lanes, channels - d0)
    a_real, d_blk, bias_blk = _block_parameters(AT, D, bias, has_D, d0, w, lanes)
    a_blk = aligned_empty(padded, lanes)
    a_blk[:] = ZERO
    a_blk[:n_state] = a_real * LOG2E
    h = aligned_empty(padded, lanes)
    h[:] = ZERO
    u_t = aligned_empty(chunk, lanes)
    dt_t = aligned_empty(chunk, lanes)
    z_t = aligned_empty(chunk, lanes)
    y_t = aligned_empty(chunk, lanes)
    b_t = np.zeros((chunk, padded), np.float32)  # columns past N stay 0
    c_t = np.zeros((chunk, padded), np.float32)
    for t0 in range(0, length, chunk):
        steps = min(chunk, length - t0)
        if chunk_states.shape[1] > 0:  # none kept when nothing needs gradients
            chunk_states[b, t0 // chunk, :, d0 : d0 + w] = h[:n_state, :w]
        _load(u, b, t0, d0, steps, w, channels_last, u_t, n_b, reverse)
        _load_delta(delta, b, t0, d0, steps, w, channels_last, dt_t, bias_blk, softplus, n_b,
                    reverse)  # fmt: skip
        _load(B, b, t0, 0, steps, n_state, channels_last, b_t, n_b, reverse)
        _load(C, b, t0, 0, steps, n_state, channels_last, c_t, n_b, reverse)
        _skip_term(y_t, u_t, d_blk, steps)
        for g in range(0, lanes, WIDTH):
            for q in range(0, padded, STATES):
                _state_group(h, a_blk, dt_t, u_t, b_t, c_t, y_t, g, q, steps)
        _store_gated(y_t, z, has_z, z_t, out, b, t0, d0, steps, w, channels_last, n_b, reverse)
    last_state[b, :, d0 : d0 + w] = h[:n_state, :w]


# numba checks this file alone for edits; forget_stale checks the helpers' files too
forget_stale(__name__, ("scan_forward", "_forward_job"))
