"""The fused CPU backward pass of the selective scan, with its states in registers.

Jobs, tiles and layouts are the forward pass's
(:mod:`dynmultidep.ops.scan.forward_kernel`): a job walks one batch element and
a block of ``lanes`` channels, from the last chunk of ``chunk`` steps to
the first. For every chunk, each lane group of
:data:`~dynmultidep.ops.vectors.WIDTH` channels first gathers its step records
(:func:`_stage`): one row per step holding its registers of ``delta``,
``delta u``, the output's gradient and ``D u``, the running sums the state groups
add to, and room for one state group's states and decays. It then takes its ``N``
states ``STATES`` at a time (``N`` zero-padded), and for each such group:

* recomputes the chunk's states from the saved state at its start, with the
  states in registers, writing each step's states and decays ``exp(delta A)``
  into the step records;
* walks the chunk in reverse with the gradients of those states and of ``A`` in
  registers, reading the states and decays back.

Both loops address everything per step through one index into the records, at
fixed offsets: with a row of each of a dozen tiles per step instead, the walk
spent most of its instructions on the rows' addresses, which do not fit the
general-purpose registers (BENCHMARKS.md, "Kernel shapes and hosts").

What crosses state groups stays in the records (the gradient reaching ``delta``
through ``A``, the sum ``sum_n dh_n B_n``, ``C h`` for the gate's gradient) and
goes back to the chunk's tiles once per lane group (:func:`_unstage`). The
gradients of ``B`` and ``C`` are sums over channels: each lane group adds its
lanes' products into a ``chunk x N x WIDTH`` tile, which is summed across its
lanes once per chunk; when neither ``B`` nor ``C`` needs a gradient, none of this
is done. Everything elementwise (the gate, ``delta``'s softplus, the
gradients of ``u``, ``D`` and the bias) runs once per chunk over whole rows, a
register at a time.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.ops.kernel_cache import forget_stale
from dynmultidep.ops.kernel_math import FASTMATH, LOG2E, ONE, ZERO, step_position
from dynmultidep.ops.scan.cpu_kernel import (
    _block_parameters,
    _load,
    _load_delta,
    _store,
)
from dynmultidep.ops.scan.forward_kernel import STATES
from dynmultidep.ops.vectors import (
    WIDTH,
    aligned_empty,
    exp,
    exp2_scaled4,
    load,
    sigmoid,
    splat,
    store,
    wide_registers,
)

LN2 = np.float32(0.6931471805599453)  # undoes the log2(e) folded into A


# A lane group's step record in ``rec`` (:func:`_stage`): registers of WIDTH lanes at
# these offsets from ``s * ROW``. The inputs and running sums of step ``s`` ...
DT, DTU, DY, Y, ADT, AGB = (k * WIDTH for k in range(6))
H = 6 * WIDTH  # ... the current state group's states after step s - 1 (row s) ...
DEC = H + STATES * WIDTH  # ... and its decays at step s
ROW = DEC + STATES * WIDTH


@numba.njit
def _recompute(h_start, a_blk, rec, b_t, c_t, g, q, steps, has_z):
    """The chunk's states ``q .. q + STATES - 1`` of lane group ``g`` from their
    values at its start, into the step records ``rec``: the states after step ``s``
    at row ``s + 1`` (``H``), the decays of step ``s`` at row ``s`` (``DEC``); adds
    ``C h`` to ``Y`` with ``has_z``."""
    wide_registers()
    h0, h1 = load(h_start[q], g), load(h_start[q + 1], g)
    h2, h3 = load(h_start[q + 2], g), load(h_start[q + 3], g)
    a0, a1 = load(a_blk[q], g), load(a_blk[q + 1], g)
    a2, a3 = load(a_blk[q + 2], g), load(a_blk[q + 3], g)
    store(rec, H, h0)
    store(rec, H + WIDTH, h1)
    store(rec, H + 2 * WIDTH, h2)
    store(rec, H + 3 * WIDTH, h3)
    r = 0
    for s in range(steps):
        dt = load(rec, r + DT)
        dtu = load(rec, r + DTU)
        bs = b_t[s]
        e0, e1, e2, e3 = exp2_scaled4(dt * a0, dt * a1, dt * a2, dt * a3)
        h0 = e0 * h0 + dtu * bs[q]
        h1 = e1 * h1 + dtu * bs[q + 1]
        h2 = e2 * h2 + dtu * bs[q + 2]
        h3 = e3 * h3 + dtu * bs[q + 3]
        store(rec, r + DEC, e0)
        store(rec, r + DEC + WIDTH, e1)
        store(rec, r + DEC + 2 * WIDTH, e2)
        store(rec, r + DEC + 3 * WIDTH, e3)
        if has_z:
            cs = c_t[s]
            y = load(rec, r + Y) + h0 * cs[q] + h1 * cs[q + 1] + h2 * cs[q + 2] + h3 * cs[q + 3]
            store(rec, r + Y, y)
        r += ROW
        store(rec, r + H, h0)
        store(rec, r + H + WIDTH, h1)
        store(rec, r + H + 2 * WIDTH, h2)
        store(rec, r + H + 3 * WIDTH, h3)


@numba.njit
def _walk_back(rec, grad, dA, a_blk, b_t, c_t, pc, pb, g, q, steps, bc_grads):
    """The reverse walk of states ``q .. q + STATES - 1`` of lane group ``g`` over
    the chunk: carries ``grad`` (dLoss/dh) to the chunk's start, adds to ``dA``,
    to the step records' ``ADT`` (``sum_n dh_{t-1} A_n log2 e``, before the
    caller's ``ln 2``) and ``AGB`` (``sum_n dh_t B_n``), and (with ``bc_grads``) to
    the lane partials ``pc`` (``dy h``) and ``pb`` (``dh delta u``) of the gradients
    of ``C`` and ``B``."""
    wide_registers()
    g0, g1 = load(grad[q], g), load(grad[q + 1], g)
    g2, g3 = load(grad[q + 2], g), load(grad[q + 3], g)
    m0, m1, m2, m3 = load(dA[q], g), load(dA[q + 1], g), load(dA[q + 2], g), load(dA[q + 3], g)
    a0, a1 = load(a_blk[q], g), load(a_blk[q + 1], g)
    a2, a3 = load(a_blk[q + 2], g), load(a_blk[q + 3], g)
    c0 = q * WIDTH
    r = steps * ROW
    for s in range(steps - 1, -1, -1):
        cur = r + H  # the states after step s
        r -= ROW
        dt = load(rec, r + DT)
        dy = load(rec, r + DY)
        dtu = load(rec, r + DTU)
        bs = b_t[s]
        cs = c_t[s]
        j0 = g0 + dy * cs[q]  # dLoss/dh_t in full
        j1 = g1 + dy * cs[q + 1]
        j2 = g2 + dy * cs[q + 2]
        j3 = g3 + dy * cs[q + 3]
        g0, g1 = j0 * load(rec, r + DEC), j1 * load(rec, r + DEC + WIDTH)
        g2, g3 = j2 * load(rec, r + DEC + 2 * WIDTH), j3 * load(rec, r + DEC + 3 * WIDTH)
        p0, p1 = g0 * load(rec, r + H), g1 * load(rec, r + H + WIDTH)
        p2, p3 = g2 * load(rec, r + H + 2 * WIDTH), g3 * load(rec, r + H + 3 * WIDTH)
        m0, m1, m2, m3 = m0 + p0 * dt, m1 + p1 * dt, m2 + p2 * dt, m3 + p3 * dt
        store(rec, r + ADT, load(rec, r + ADT) + p0 * a0 + p1 * a1 + p2 * a2 + p3 * a3)
        gb = j0 * bs[q] + j1 * bs[q + 1] + j2 * bs[q + 2] + j3 * bs[q + 3]
        store(rec, r + AGB, load(rec, r + AGB) + gb)
        if bc_grads:
            rc = pc[s]
            rb = pb[s]
            store(rc, c0, load(rc, c0) + dy * load(rec, cur))
            store(rc, c0 + WIDTH, load(rc, c0 + WIDTH) + dy * load(rec, cur + WIDTH))
            store(rc, c0 + 2 * WIDTH, load(rc, c0 + 2 * WIDTH) + dy * load(rec, cur + 2 * WIDTH))
            store(rc, c0 + 3 * WIDTH, load(rc, c0 + 3 * WIDTH) + dy * load(rec, cur + 3 * WIDTH))
            store(rb, c0, load(rb, c0) + j0 * dtu)
            store(rb, c0 + WIDTH, load(rb, c0 + WIDTH) + j1 * dtu)
            store(rb, c0 + 2 * WIDTH, load(rb, c0 + 2 * WIDTH) + j2 * dtu)
            store(rb, c0 + 3 * WIDTH, load(rb, c0 + 3 * WIDTH) + j3 * dtu)
    store(grad[q], g, g0)
    store(grad[q + 1], g, g1)
    store(grad[q + 2], g, g2)
    store(grad[q + 3], g, g3)
    store(dA[q], g, m0)
    store(dA[q + 1], g, m1)
    store(dA[q + 2], g, m2)
    store(dA[q + 3], g, m3)


@numba.njit
def _state_group(h_start, a_blk, rec, grad, dA, b_t, c_t, pc, pb, g, q, steps, has_z,
                 bc_grads):  # fmt: skip
    """One group of ``STATES`` states of lane group ``g`` through one chunk:
    :func:`_recompute`, then :func:`_walk_back`."""
    _recompute(h_start, a_blk, rec, b_t, c_t, g, q, steps, has_z)
    _walk_back(rec, grad, dA, a_blk, b_t, c_t, pc, pb, g, q, steps, bc_grads)


@numba.njit(inline="always")
def _stage(rec, dt_t, dtu_t, dy_t, y_t, g, steps, has_z):
    """The step records of lane group ``g``: its registers of ``dt_t``, ``dtu_t``,
    ``dy_t`` and (for the gate's gradient, with ``has_z``) ``y_t`` side by side in one
    row per step, ``ADT`` and ``AGB`` zeroed. The state groups then walk one array
    with fixed offsets, not a row of each tile."""
    r = 0
    for s in range(steps):
        store(rec, r + DT, load(dt_t[s], g))
        store(rec, r + DTU, load(dtu_t[s], g))
        store(rec, r + DY, load(dy_t[s], g))
        if has_z:
            store(rec, r + Y, load(y_t[s], g))
        store(rec, r + ADT, splat(ZERO))
        store(rec, r + AGB, splat(ZERO))
        r += ROW


@numba.njit(inline="always")
def _unstage(rec, y_t, adt_t, agb_t, g, steps, has_z):
    """``ADT``, ``AGB`` and (with ``has_z``) ``Y`` of lane group ``g``'s step records
    back to the tiles."""
    r = 0
    for s in range(steps):
        if has_z:
            store(y_t[s], g, load(rec, r + Y))
        store(adt_t[s], g, load(rec, r + ADT))
        store(agb_t[s], g, load(rec, r + AGB))
        r += ROW


@numba.njit(inline="always")
def _step_row(x, tile, b, t, s, length, reverse, direct):
    """Step ``t``'s row of ``x (batch, L, d_inner)`` itself with ``direct`` (a whole
    channels-last block, read or written from column ``d0``), else row ``s`` of the
    chunk's ``tile`` (column 0)."""
    if direct:
        return x[b, step_position(t, length, reverse)]
    return tile[s]


@numba.njit
def _gate_gradient(ur, gr, zr, i0, dt, d_blk, dtu, dy, y, sg, has_z):
    """One step's rows before the walk: ``dtu = delta u``, ``y = D u`` (the walk adds
    ``C h``), ``dy = dout silu(z)`` (``dout`` without ``z``), and ``sg = sigmoid(z)``
    for :func:`_input_gradients`. ``ur``, ``gr``, ``zr`` hold the step's ``u``,
    ``dout`` and ``z`` from column ``i0`` (:func:`_step_row`); the rest are tile rows."""
    wide_registers()
    for j in range(0, dt.shape[0], WIDTH):
        uv = load(ur, i0 + j)
        store(dtu, j, load(dt, j) * uv)
        store(y, j, load(d_blk, j) * uv)
        gv = load(gr, i0 + j)
        if has_z:
            zv = load(zr, i0 + j)
            sig = sigmoid(zv)
            store(sg, j, sig)
            gv = gv * zv * sig
        store(dy, j, gv)


@numba.njit
def _input_gradients(
    ur, gr, zr, i0, dt, dy, y, sg, adt, agb, d_blk, dD, dbias, has_z, softplus, du, ddelta, dz,
    o0,
):  # fmt: skip
    """One step's rows after the walk, from the walk's sums ``adt`` and ``agb``: the
    gradients of the raw ``delta``, of ``u`` and of ``z`` into ``ddelta``, ``du`` and
    ``dz`` from column ``o0`` (tile rows, which may be ``adt``, ``agb`` and ``gr``
    themselves, or the outputs' rows: :func:`_step_row`); adds to ``dD`` and ``dbias``.
    Inputs as :func:`_gate_gradient`'s."""
    wide_registers()
    for j in range(0, dt.shape[0], WIDTH):
        uv, dtv, dyv, gbv = load(ur, i0 + j), load(dt, j), load(dy, j), load(agb, j)
        store(dD, j, load(dD, j) + dyv * uv)
        ddt = load(adt, j) * LN2 + gbv * uv
        if softplus:  # d softplus(x) / dx = sigmoid(x) = 1 - exp(-softplus(x))
            ddt = ddt * (ONE - exp(dtv * -ONE))
        store(dbias, j, load(dbias, j) + ddt)
        store(ddelta, o0 + j, ddt)
        store(du, o0 + j, dyv * load(d_blk, j) + gbv * dtv)
        if has_z:  # out = (C h + D u) silu(z)
            zv = load(zr, i0 + j)
            sig = load(sg, j)
            store(dz, o0 + j, load(gr, i0 + j) * load(y, j) * sig * (sig * zv * -ONE + zv + ONE))


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def scan_backward(
    u, delta, AT, B, C, D, z, bias, has_D, has_z, softplus, channels_last, lengths, reverse,
    chunk, lanes, chunk_states, dout, dlast, has_dlast, du, ddelta, dz, dA_part, bc_grads,
    dB_part, dC_part, dD_part, dbias_part,
):  # fmt: skip
    """Backward pass: gradients of every input (of ``B`` and ``C`` only with
    ``bc_grads``; without, their per-lane partial sums are neither taken nor reduced).

    ``du, ddelta, dz`` take the layout of ``u``; the rest are partial sums for
    the caller to reduce: ``dA_part (batch, N, d_inner)``,
    ``dB_part, dC_part (batch, blocks, L, N)``, ``dD_part, dbias_part
    (batch, d_inner)``. ``ddelta`` is the gradient of the raw ``delta``; with
    ``softplus`` it uses ``sigmoid(x) = 1 - exp(-softplus(x))``.
    """
    blocks = (AT.shape[1] + lanes - 1) // lanes
    for job in numba.prange(u.shape[0] * blocks):
        _backward_job(
            job // blocks, job % blocks, u, delta, AT, B, C, D, z, bias, has_D, has_z, softplus,
            channels_last, lengths, reverse, chunk, lanes, chunk_states, dout, dlast, has_dlast, du,
            ddelta, dz, dA_part, bc_grads, dB_part, dC_part, dD_part, dbias_part,
        )  # fmt: skip


@numba.njit(fastmath=FASTMATH, cache=True)
def _backward_job(
    b, blk, u, delta, AT, B, C, D, z, bias, has_D, has_z, softplus, channels_last, lengths,
    reverse, chunk, lanes, chunk_states, dout, dlast, has_dlast, du, ddelta, dz, dA_part, bc_grads,
    dB_part, dC_part, dD_part, dbias_part,
):  # fmt: skip
    """One job of :func:`scan_backward`: batch element ``b``, channel block ``blk``
    (a function of its own for the reason :func:`~dynmultidep.ops.scan.forward_kernel.
    _forward_job` is)."""
    wide_registers()
    n_state, channels = AT.shape
    padded = -(-n_state // STATES) * STATES
    length = u.shape[1] if channels_last else u.shape[2]
    n_chunks = (length + chunk - 1) // chunk
    n_b = lengths[b]
    d0 = blk * lanes
    w = min(lanes, channels - d0)
    # a whole channels-last block reads u, dout and z and writes du, ddelta and dz in
    # its own rows; otherwise they go through the chunk's tiles
    direct = channels_last and w == lanes
    i0 = d0 if direct else 0
    a_real, d_blk, bias_blk = _block_parameters(AT, D, bias, has_D, d0, w, lanes)
    a_blk = aligned_empty(padded, lanes)
    a_blk[:] = ZERO
    a_blk[:n_state] = a_real * LOG2E
    grad = aligned_empty(padded, lanes)  # dLoss/dh at the end of the current chunk
    grad[:] = ZERO
    if has_dlast:
        grad[:n_state, :w] = dlast[b, :, d0 : d0 + w]
    dA = aligned_empty(padded, lanes)
    dA[:] = ZERO
    h_start = aligned_empty(padded, lanes)
    h_start[:] = ZERO
    u_t, dt_t, z_t = (
        aligned_empty(chunk, lanes),
        aligned_empty(chunk, lanes),
        aligned_empty(chunk, lanes),
    )
    g_t = aligned_empty(chunk, lanes)  # incoming gradient, then dz
    sg_t = aligned_empty(chunk, lanes)  # sigmoid(z), taken once for both gradients
    dtu_t, dy_t, y_t = (
        aligned_empty(chunk, lanes),
        aligned_empty(chunk, lanes),
        aligned_empty(chunk, lanes),
    )
    adt_t, agb_t = aligned_empty(chunk, lanes), aligned_empty(chunk, lanes)
    rec = aligned_empty(1, (chunk + 1) * ROW)[0]
    pc, pb = aligned_empty(chunk, padded * WIDTH), aligned_empty(chunk, padded * WIDTH)
    b_t = np.zeros((chunk, padded), np.float32)  # columns past N stay 0
    c_t = np.zeros((chunk, padded), np.float32)
    dD = aligned_empty(1, lanes)[0]
    dD[:] = ZERO
    dbias = aligned_empty(1, lanes)[0]
    dbias[:] = ZERO
    for c in range(n_chunks - 1, -1, -1):
        t0 = c * chunk
        steps = min(chunk, length - t0)
        if not direct:
            _load(u, b, t0, d0, steps, w, channels_last, u_t, n_b, reverse)
            _load(dout, b, t0, d0, steps, w, channels_last, g_t, n_b, reverse)
            if has_z:
                _load(z, b, t0, d0, steps, w, channels_last, z_t, n_b, reverse)
        _load_delta(delta, b, t0, d0, steps, w, channels_last, dt_t, bias_blk, softplus, n_b,
                    reverse)  # fmt: skip
        _load(B, b, t0, 0, steps, n_state, channels_last, b_t, n_b, reverse)
        _load(C, b, t0, 0, steps, n_state, channels_last, c_t, n_b, reverse)
        h_start[:n_state, :w] = chunk_states[b, c, :, d0 : d0 + w]
        for s in range(steps):
            t = t0 + s
            _gate_gradient(
                _step_row(u, u_t, b, t, s, n_b, reverse, direct),
                _step_row(dout, g_t, b, t, s, n_b, reverse, direct),
                _step_row(z, z_t, b, t, s, n_b, reverse, direct and has_z), i0, dt_t[s], d_blk,
                dtu_t[s], dy_t[s], y_t[s], sg_t[s], has_z,
            )  # fmt: skip
        if bc_grads:
            pc[:steps] = ZERO
            pb[:steps] = ZERO
        for g in range(0, lanes, WIDTH):
            _stage(rec, dt_t, dtu_t, dy_t, y_t, g, steps, has_z)
            for q in range(0, padded, STATES):
                # the flag as a constant: numba compiles one walk with the lane partials and
                # one without, where a flag passed on would be tested at every step
                if bc_grads:
                    _state_group(h_start, a_blk, rec, grad, dA, b_t, c_t, pc, pb, g, q, steps,
                                 has_z, True)  # fmt: skip
                else:
                    _state_group(h_start, a_blk, rec, grad, dA, b_t, c_t, pc, pb, g, q, steps,
                                 has_z, False)  # fmt: skip
            _unstage(rec, y_t, adt_t, agb_t, g, steps, has_z)
        for s in range(steps):
            t = t0 + s
            _input_gradients(
                _step_row(u, u_t, b, t, s, n_b, reverse, direct),
                _step_row(dout, g_t, b, t, s, n_b, reverse, direct),
                _step_row(z, z_t, b, t, s, n_b, reverse, direct and has_z), i0, dt_t[s],
                dy_t[s], y_t[s], sg_t[s], adt_t[s], agb_t[s], d_blk, dD, dbias, has_z, softplus,
                _step_row(du, agb_t, b, t, s, n_b, reverse, direct),
                _step_row(ddelta, adt_t, b, t, s, n_b, reverse, direct),
                _step_row(dz, g_t, b, t, s, n_b, reverse, direct and has_z), i0,
            )  # fmt: skip
            if not bc_grads:
                continue
            p = step_position(t, n_b, reverse)
            rc, rb = pc[s], pb[s]
            for n in range(n_state):
                sum_c = ZERO
                sum_b = ZERO
                for k in range(WIDTH):
                    sum_c += rc[n * WIDTH + k]
                    sum_b += rb[n * WIDTH + k]
                dC_part[b, blk, p, n] = sum_c
                dB_part[b, blk, p, n] = sum_b
        if not direct:
            _store(agb_t, du, b, t0, d0, steps, w, channels_last, n_b, reverse)
            _store(adt_t, ddelta, b, t0, d0, steps, w, channels_last, n_b, reverse)
            if has_z:
                _store(g_t, dz, b, t0, d0, steps, w, channels_last, n_b, reverse)
    dA_part[b, :, d0 : d0 + w] = dA[:n_state, :w]
    dD_part[b, d0 : d0 + w] = dD[:w]
    dbias_part[b, d0 : d0 + w] = dbias[:w]


# numba checks this file alone for edits; forget_stale checks the helpers' files too
forget_stale(__name__, ("scan_backward", "_backward_job"))
