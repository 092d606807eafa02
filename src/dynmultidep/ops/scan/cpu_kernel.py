"""The tiles of the fused CPU kernels of the selective scan, compiled by numba.

The forward pass (:mod:`dynmultidep.ops.scan.forward_kernel`) and the backward
pass (:mod:`dynmultidep.ops.scan.backward_kernel`) share their job layout and
the helpers here. Sequence tensors come in either layout, told by
``channels_last``: ``u, delta, z, out: (batch, L, d_inner)`` and
``B, C: (batch, L, N)`` when true, ``(batch, d_inner, L)`` and ``(batch, N, L)``
(mamba_ssm's layout) when false. ``AT: (N, d_inner)`` is A transposed.

One job walks the whole sequence for one batch element and a block of
channels, ``chunk`` steps at a time: it copies the chunk's inputs into small
time-major tiles (:func:`_load`), so the innermost loops always run over
contiguous channels (lanes = channels). For mamba_ssm's layout that copy is a
transposition, ``WIDTH x WIDTH`` blocks at a time in vector registers; the
channels-last layout avoids it and copies rows a vector register at a time. A
backward-in-time scan (``reverse``) reads and writes every row at its position
within the sequence's length (:func:`~dynmultidep.ops.kernel_math.step_position`).

* The forward pass saves the state at the start of every ``chunk`` steps
  only; the backward pass recomputes one chunk's states at a time and walks
  it in reverse, so memory stays O(batch x L x d_inner), never x N.
* Channels beyond ``d_inner`` in the last block are zero-padded in the
  tiles: with ``u = 0`` their state stays 0 and nothing is written.
* Sums over channels (gradients of the shared ``B`` and ``C``) go to
  per-job partial buffers that the caller adds up, so jobs never race.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.ops.kernel_math import ZERO, step_position
from dynmultidep.ops.vectors import WIDTH, load, store, transpose_block
from dynmultidep.ops.vectors import sigmoid as vector_sigmoid
from dynmultidep.ops.vectors import softplus as vector_softplus

MIN_LANES = 256  # the narrowest job a split makes: 16, 32 or 64 lane groups (by kernel shape)
JOBS_PER_THREAD = 4  # with this many jobs per thread an uneven last round costs little


def job_lanes(batch: int, channels: int, threads: int, channels_last: bool = True) -> int:
    """Channels per job (a multiple of ``WIDTH``): whole rows unless that leaves
    threads idle, else halved, down to ``MIN_LANES``, until the jobs (``batch`` x
    blocks) divide evenly among the ``threads`` or give each ``JOBS_PER_THREAD``.

    A job reads each step's row of its channel block. A whole row (4 KiB at
    ``d_inner`` 1024) is one stream the hardware prefetcher follows, where quarter
    rows make four short streams per page (BENCHMARKS.md, "Whole rows per scan
    job"). In mamba_ssm's layout a job transposes its channels' rows into the
    tiles, and a tile of whole rows (256 KiB) no longer stays in L1: there jobs
    stay at ``MIN_LANES`` (the bench's forward in that layout at N 16, L 2048:
    0.20 s with whole rows at commit a7ea47e, 0.09-0.11 s at 256 channels).
    """
    lanes = -(-channels // WIDTH) * WIDTH
    if not channels_last:
        lanes = min(lanes, MIN_LANES)
    while lanes > MIN_LANES:
        jobs = batch * -(-channels // lanes)
        if jobs >= JOBS_PER_THREAD * threads or (jobs >= threads and jobs % threads == 0):
            break
        lanes = max(MIN_LANES, -(-lanes // (2 * WIDTH)) * WIDTH)
    return lanes


@numba.njit(inline="always")
def _biased(src, s0, bias, j):
    """``src[s0 + j : s0 + j + WIDTH] + bias[j : j + WIDTH]``."""
    return load(src, s0 + j) + load(bias, j)


@numba.njit(inline="always")
def _softplus_row(dst, src, s0, bias, width, softplus):
    """``dst[:width] = softplus(src[s0 : s0 + width] + bias)`` (``src`` may be ``dst``).

    Four registers per iteration, all loaded before any is stored: their four
    softplus chains (an exponential, a division, a series) are then independent
    within one block, and LLVM interleaves them. A register at a time the core
    found too little to overlap: the channels-last forward took 3-4% longer on an
    AVX2 host, and the prelude more than twice as long (BENCHMARKS.md, "AVX2: AMD
    EPYC, Zen 3"). The same values."""
    quads = width - width % (4 * WIDTH)
    for j in range(0, quads, 4 * WIDTH):
        v0 = _biased(src, s0, bias, j)
        v1 = _biased(src, s0, bias, j + WIDTH)
        v2 = _biased(src, s0, bias, j + 2 * WIDTH)
        v3 = _biased(src, s0, bias, j + 3 * WIDTH)
        if softplus:
            v0, v1 = vector_softplus(v0), vector_softplus(v1)
            v2, v3 = vector_softplus(v2), vector_softplus(v3)
        store(dst, j, v0)
        store(dst, j + WIDTH, v1)
        store(dst, j + 2 * WIDTH, v2)
        store(dst, j + 3 * WIDTH, v3)
    for j in range(quads, width, WIDTH):
        v = _biased(src, s0, bias, j)
        if softplus:
            v = vector_softplus(v)
        store(dst, j, v)


@numba.njit(inline="always")
def _gated(src, j, zv):
    """``src[j : j + WIDTH] * silu(zv)``."""
    return load(src, j) * zv * vector_sigmoid(zv)


@numba.njit(inline="always")
def _gate_row(dst, d0, src, z, z0, width):
    """``dst[d0 : d0 + width] = src[:width] * silu(z[z0 : z0 + width])`` (``src`` may
    be ``dst``), four registers per iteration as :func:`_softplus_row` takes them."""
    quads = width - width % (4 * WIDTH)
    for j in range(0, quads, 4 * WIDTH):
        za, zb = load(z, z0 + j), load(z, z0 + j + WIDTH)
        zc, zd = load(z, z0 + j + 2 * WIDTH), load(z, z0 + j + 3 * WIDTH)
        g0, g1 = _gated(src, j, za), _gated(src, j + WIDTH, zb)
        g2, g3 = _gated(src, j + 2 * WIDTH, zc), _gated(src, j + 3 * WIDTH, zd)
        store(dst, d0 + j, g0)
        store(dst, d0 + j + WIDTH, g1)
        store(dst, d0 + j + 2 * WIDTH, g2)
        store(dst, d0 + j + 3 * WIDTH, g3)
    for j in range(quads, width, WIDTH):
        store(dst, d0 + j, _gated(src, j, load(z, z0 + j)))


@numba.njit(inline="always")
def _prepare_delta(tile, steps, bias, softplus):
    """``delta <- softplus(delta + bias)`` in place on the first ``steps`` rows
    (a whole number of registers wide)."""
    for s in range(steps):
        _softplus_row(tile[s], tile[s], 0, bias, tile.shape[1], softplus)


@numba.njit(inline="always")
def _load_delta(delta, b, t0, d0, steps, width, channels_last, tile, bias, softplus, length,
                reverse):  # fmt: skip
    """``tile <- softplus(delta + bias)`` for the chunk (:func:`_load` then
    :func:`_prepare_delta`). A whole block of channels-last rows is read straight
    from ``delta`` in the same pass as the softplus: one pass over the tile instead
    of three, the same values."""
    if channels_last and width == tile.shape[1]:
        for s in range(steps):
            src = delta[b, step_position(t0 + s, length, reverse)]
            _softplus_row(tile[s], src, d0, bias, width, softplus)
    else:
        _load(delta, b, t0, d0, steps, width, channels_last, tile, length, reverse)
        _prepare_delta(tile, steps, bias, softplus)


@numba.njit(inline="always")
def _store_gated(tile, z, has_z, z_t, out, b, t0, d0, steps, width, channels_last, length,
                 reverse):  # fmt: skip
    """``out <- tile * silu(z)`` (``tile`` alone without ``z``) for the chunk. A whole
    block of channels-last rows reads ``z`` and writes ``out`` in the pass that takes
    the gate; otherwise ``z`` goes through the tile ``z_t`` (:func:`_load`), the gate
    is taken in place, and :func:`_store` writes the result. The same values."""
    if has_z and channels_last and width == tile.shape[1]:
        for s in range(steps):
            p = step_position(t0 + s, length, reverse)
            _gate_row(out[b, p], d0, tile[s], z[b, p], d0, width)
        return
    if has_z:
        _load(z, b, t0, d0, steps, width, channels_last, z_t, length, reverse)
        for s in range(steps):
            _gate_row(tile[s], 0, tile[s], z_t[s], 0, tile.shape[1])
    _store(tile, out, b, t0, d0, steps, width, channels_last, length, reverse)


@numba.njit(inline="always")
def _copy_row(dst, d0, src, s0, n):
    """``dst[d0 : d0 + n] = src[s0 : s0 + n]`` for contiguous rows, a register at a time."""
    full = n - n % WIDTH
    for j in range(0, full, WIDTH):
        store(dst, d0 + j, load(src, s0 + j))
    for j in range(full, n):
        dst[d0 + j] = src[s0 + j]


@numba.njit(inline="always")
def _move_block(rows, tile, c, p, s0, j, into_tile, reverse):
    """One ``WIDTH x WIDTH`` block between ``rows[c :, p :]`` (mamba_ssm's layout,
    positions ascending) and ``tile[s0 :, j :]`` (steps in scan order), in registers
    (:func:`~dynmultidep.ops.vectors.transpose_block`); backwards in time the
    steps run down the positions."""
    if into_tile:
        if reverse:
            transpose_block(rows, c, p, tile, s0, j, False, True)
        else:
            transpose_block(rows, c, p, tile, s0, j, False, False)
    elif reverse:
        transpose_block(tile, s0, j, rows, c, p, True, False)
    else:
        transpose_block(tile, s0, j, rows, c, p, False, False)


@numba.njit(inline="always")
def _move_elements(rows, tile, c0, t0, j_lo, j_hi, s_lo, s_hi, length, reverse, into_tile):
    """Tile columns ``j_lo .. j_hi - 1`` by steps ``s_lo .. s_hi - 1``, element by element."""
    for j in range(j_lo, j_hi):
        for s in range(s_lo, s_hi):
            p = step_position(t0 + s, length, reverse)
            if into_tile:
                tile[s, j] = rows[c0 + j, p]
            else:
                rows[c0 + j, p] = tile[s, j]


@numba.njit(inline="always")
def _transpose_tile(rows, tile, t0, c0, steps, width, length, reverse, into_tile):
    """``tile[s, j] = rows[c0 + j, p]`` (``into_tile``; else the other way, for the valid
    part of the tile), ``rows (channels, L)`` in mamba_ssm's layout and ``p`` the position
    of step ``t0 + s``: whole ``WIDTH x WIDTH`` blocks in registers, the edges (and,
    backwards in time, a block across the sequence's length) element by element.

    The blocks go along the chunk's steps before the next ``WIDTH`` channels, so a
    block's rows are read (or written) line after line while they are still in L1;
    across the channels first, each block opened ``WIDTH`` new rows ``L`` floats apart
    (at ``L`` 2048, 8 KiB: lines of one L1 set), and mamba_ssm's layout ran a few
    percent slower (BENCHMARKS.md, "AVX-512: Intel Xeon")."""
    full_s = steps - steps % WIDTH
    full_j = width - width % WIDTH
    for j in range(0, full_j, WIDTH):
        for s0 in range(0, full_s, WIDTH):
            t = t0 + s0
            if not reverse or t + WIDTH <= length:
                first = length - t - WIDTH if reverse else t  # the block's lowest position
                _move_block(rows, tile, c0 + j, first, s0, j, into_tile, reverse)
            else:
                _move_elements(rows, tile, c0, t0, j, j + WIDTH, s0, s0 + WIDTH, length, reverse,
                               into_tile)  # fmt: skip
    _move_elements(rows, tile, c0, t0, full_j, width, 0, full_s, length, reverse, into_tile)
    _move_elements(rows, tile, c0, t0, 0, width, full_s, steps, length, reverse, into_tile)


@numba.njit(inline="always")
def _load(x, b, t0, c0, steps, width, channels_last, tile, length, reverse):
    """``tile[s, j] = x[b, p, c0 + j]`` (or ``x[b, c0 + j, p]``) at the position ``p``
    of step ``t0 + s`` (:func:`~dynmultidep.ops.kernel_math.step_position`), zero beyond."""
    if width < tile.shape[1] or steps < tile.shape[0]:
        tile[:] = ZERO
    if channels_last:
        for s in range(steps):
            _copy_row(tile[s], 0, x[b, step_position(t0 + s, length, reverse)], c0, width)
    else:
        _transpose_tile(x[b], tile, t0, c0, steps, width, length, reverse, True)


@numba.njit(inline="always")
def _store(tile, x, b, t0, c0, steps, width, channels_last, length, reverse):
    """The inverse of :func:`_load`, for the valid part of the tile."""
    if channels_last:
        for s in range(steps):
            _copy_row(x[b, step_position(t0 + s, length, reverse)], c0, tile[s], 0, width)
    else:
        _transpose_tile(x[b], tile, t0, c0, steps, width, length, reverse, False)


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
