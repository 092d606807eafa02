"""Fused CPU kernels of banded multi-head attention, compiled by numba (the
reference is :func:`dynmultidep.ops.attention.banded_attention`).

The kernels read the projections where the linear layers wrote them:
``x: (B, L, 3 * H * hd)`` holds ``[q | k | v]`` per step, head ``h`` of each at
columns ``h * hd`` of its third, and write ``out: (B, L, H * hd)``, the layout
``out_proj`` reads. No ``(B, H, L, 3w)`` score or mask tensor is built: a
query's scores live in a tile of its own. A valid query ``t < lengths[b]``
attends to the keys ``s`` with ``|t - s| < w`` (``s <= t`` when causal) and
``s < lengths[b]``; a padded query's output is 0.

Queries go a tile of :data:`~dynmultidep.ops.vectors.WIDTH` at a time, one per vector
lane: the tile's keys (at most ``WIDTH + 2w - 2``) are scored against all its
queries in registers, four keys at once, and the softmax runs across keys
lane by lane, so nothing is reduced across lanes. Entries outside the band or
the lengths are masked in the tile (``mask`` 1 or 0).

Dropout on the attention weights, as the reference's ``dropout_p``, keeps
weight ``(b, h, t, s)`` where the hash of its index
``((b * H + h) * L + t) * (2w - 1) + (s - t + w - 1)`` with two keys passes
the threshold: the function of :mod:`.dropout_kernel` (``mix32``), so the
backward pass recomputes the mask and never stores it.

The forward pass keeps each query's log-sum-exp ``lse: (B, L, H)``; the backward
pass recomputes the weights from it (``p = exp(s - lse)``), as flash attention
does. The forward runs one job per (sequence, head, block of steps); the backward
one per (sequence, head), since the key gradients of neighbouring tiles add up
in the same rows.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.ops.dropout_kernel import mix32
from dynmultidep.ops.kernel_cache import forget_stale
from dynmultidep.ops.kernel_math import FASTMATH
from dynmultidep.ops.vectors import (
    WIDTH,
    aligned_empty,
    exp,
    load,
    splat,
    store,
    vmax,
    wide_registers,
)

TIME_BLOCK = 8 * WIDTH  # query steps per forward job
_U = np.uint32
_F = np.float32
_BIG = _F(1.0e30)  # a masked score is -_BIG
_TINY = _F(1.0e-30)  # a fully masked (padded) query's sum of weights


@numba.njit(inline="always")
def _key_range(t0, n, window, causal):
    """The keys any query of the tile at ``t0`` attends to: ``range(first, last)``."""
    first = max(0, t0 - window + 1)
    last = min(n, t0 + WIDTH if causal else t0 + WIDTH + window - 1)
    return first, max(first, last)


@numba.njit(fastmath=FASTMATH)
def _band(b, h, t0, first, keys, n, length, heads, window, causal, dropout, threshold,
          keep_scale, key1, key2, mask, factor):  # fmt: skip
    """``mask[r, l]``: 1 where query ``t0 + l`` (valid) attends to key ``first + r``,
    else 0; ``factor``: the mask times the dropout's ``keep_scale`` or 0 (the mask
    itself without dropout; pass the same array then)."""
    band = 2 * window - 1
    for r in range(keys):
        s = first + r
        for lane in range(WIDTH):
            t = t0 + lane
            inside = t < n and abs(t - s) < window and (s <= t or not causal)
            mask[r, lane] = _F(1.0) if inside else _F(0.0)
            if dropout:
                i = _U(_U((b * heads + h) * length + t) * _U(band) + _U(s - t + window - 1))
                kept = inside and mix32(_U(mix32(_U(i + key1)) ^ key2)) >= threshold
                factor[r, lane] = keep_scale if kept else _F(0.0)


@numba.njit(fastmath=FASTMATH)
def _transpose_in(xb, t0, column, hd, length, scale, tile):
    """``tile[i, l] = scale * xb[t0 + l, column + i]`` (0 from step ``length`` on)."""
    for i in range(hd):
        for lane in range(WIDTH):
            t = t0 + lane
            tile[i, lane] = xb[t, column + i] * scale if t < length else _F(0.0)


@numba.njit(fastmath=FASTMATH)
def _rows_times_tile(xb, column, first, keys, hd, tile, out):
    """``out[r, :] = sum_i xb[first + r, column + i] * tile[i, :]`` for ``r < keys``:
    each key's dot products with the tile's queries, four keys at once."""
    r = 0
    while r + 4 <= keys:
        a0 = a1 = a2 = a3 = splat(_F(0.0))
        x0, x1, x2, x3 = xb[first + r], xb[first + r + 1], xb[first + r + 2], xb[first + r + 3]
        for i in range(hd):
            q = load(tile[i], 0)
            c = column + i
            a0 = a0 + q * x0[c]
            a1 = a1 + q * x1[c]
            a2 = a2 + q * x2[c]
            a3 = a3 + q * x3[c]
        store(out[r], 0, a0)
        store(out[r + 1], 0, a1)
        store(out[r + 2], 0, a2)
        store(out[r + 3], 0, a3)
        r += 4
    while r < keys:
        a0 = splat(_F(0.0))
        x0 = xb[first + r]
        for i in range(hd):
            a0 = a0 + load(tile[i], 0) * x0[column + i]
        store(out[r], 0, a0)
        r += 1


@numba.njit(fastmath=FASTMATH)
def _tile_times_rows(weights, xb, column, first, keys, hd, out):
    """``out[i, :] = sum_r xb[first + r, column + i] * weights[r, :]`` for ``i < hd``:
    the weighted sum of the keys' rows for each query lane, four features at once."""
    i = 0
    while i + 4 <= hd:
        a0 = a1 = a2 = a3 = splat(_F(0.0))
        c = column + i
        for r in range(keys):
            wr = load(weights[r], 0)
            row = xb[first + r]
            a0 = a0 + wr * row[c]
            a1 = a1 + wr * row[c + 1]
            a2 = a2 + wr * row[c + 2]
            a3 = a3 + wr * row[c + 3]
        store(out[i], 0, a0)
        store(out[i + 1], 0, a1)
        store(out[i + 2], 0, a2)
        store(out[i + 3], 0, a3)
        i += 4
    while i < hd:
        a0 = splat(_F(0.0))
        for r in range(keys):
            a0 = a0 + load(weights[r], 0) * xb[first + r, column + i]
        store(out[i], 0, a0)
        i += 1


@numba.njit(fastmath=FASTMATH)
def _masked_softmax_terms(scores, mask, keys):
    """Masks ``scores`` (tile rows) and returns their lane-wise maximum ``m``:
    masked entries become ``-_BIG``."""
    top = splat(-_BIG)
    for r in range(keys):
        mr = load(mask[r], 0)
        s = load(scores[r], 0) * mr + (mr - _F(1.0)) * _BIG
        store(scores[r], 0, s)
        top = vmax(top, s)
    return top


@numba.njit(inline="always")
def _columns(width, heads, h):
    """Head ``h``'s width and the first columns of its q, k and v in a packed row."""
    hd = width // (3 * heads)
    d = heads * hd
    return hd, h * hd, d + h * hd, 2 * d + h * hd


@numba.njit(fastmath=FASTMATH)
def _tile_scores(b, h, t0, xb, n, length, heads, window, causal, scale, dropout, threshold,
                 keep_scale, key1, key2, qo, ko, hd, qt, scores, mask, factor):  # fmt: skip
    """The masked scores of the tile at ``t0`` against its keys (``scores``, ``mask``,
    ``factor`` filled, ``qt`` holding its scaled queries); returns ``(first, keys,
    lane-wise maximum)``."""
    first, last = _key_range(t0, n, window, causal)
    keys = last - first
    _band(b, h, t0, first, keys, n, length, heads, window, causal, dropout, threshold,
          keep_scale, key1, key2, mask, factor)  # fmt: skip
    _transpose_in(xb, t0, qo, hd, n, scale, qt)
    _rows_times_tile(xb, ko, first, keys, hd, qt, scores)
    return first, keys, _masked_softmax_terms(scores, mask, keys)


@numba.njit(fastmath=FASTMATH, cache=True)
def _forward_job(b, h, start, stop, x, lengths, heads, window, causal, scale, dropout, threshold,
                 keep_scale, key1, key2, out, lse):  # fmt: skip
    """One job of :func:`banded_forward`: sequence ``b``, head ``h``, queries
    ``start <= t < stop``, a tile at a time. A function of its own, not the body of
    the parallel loop, as the scan's jobs are (numba's parallel passes see one call)."""
    wide_registers()
    length = x.shape[1]
    hd, qo, ko, vo = _columns(x.shape[2], heads, h)
    n = min(lengths[b], length)
    xb = x[b]
    ob = out[b]
    most = WIDTH + 2 * window
    qt = aligned_empty(hd, WIDTH)
    ot = aligned_empty(hd, WIDTH)
    scores = aligned_empty(most, WIDTH)
    mask = aligned_empty(most, WIDTH)
    factor = aligned_empty(most, WIDTH) if dropout else mask
    edge = aligned_empty(2, WIDTH)
    for t0 in range(start, stop, WIDTH):
        first, keys, top = _tile_scores(b, h, t0, xb, n, length, heads, window, causal, scale,
                                        dropout, threshold, keep_scale, key1, key2, qo, ko, hd,
                                        qt, scores, mask, factor)  # fmt: skip
        total = splat(_F(0.0))
        for r in range(keys):
            p = exp(load(scores[r], 0) - top) * load(mask[r], 0)
            store(scores[r], 0, p)
            total = total + p
        total = vmax(total, splat(_TINY))
        inv = splat(_F(1.0)) / total
        for r in range(keys):  # the weights, dropped where the factor says
            store(scores[r], 0, load(scores[r], 0) * inv * load(factor[r], 0))
        _tile_times_rows(scores, xb, vo, first, keys, hd, ot)
        store(edge[0], 0, top)
        store(edge[1], 0, total)
        for lane in range(min(WIDTH, stop - t0)):
            t = t0 + lane
            valid = t < n
            for i in range(hd):
                ob[t, qo + i] = ot[i, lane] if valid else _F(0.0)
            lse[b, t, h] = edge[0, lane] + np.log(edge[1, lane]) if valid else _F(0.0)


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def banded_forward(x, lengths, heads, window, causal, scale, dropout, threshold, keep_scale,
                   key1, key2, out, lse):  # fmt: skip
    """``out[b, t, h]`` = the attention of query ``(b, t, h)`` (see the module
    docstring), ``lse[b, t, h]`` its log-sum-exp (0 for padded queries).
    ``scale``: the score scale (``1 / sqrt(hd)``); ``dropout``: whether the mask of
    ``threshold``, ``key1``, ``key2`` applies, kept weights scaled by ``keep_scale``."""
    batch, length = x.shape[0], x.shape[1]
    blocks = (length + TIME_BLOCK - 1) // TIME_BLOCK
    for job in numba.prange(batch * heads * blocks):
        start = (job % blocks) * TIME_BLOCK
        _forward_job(job // (heads * blocks), (job // blocks) % heads, start,
                     min(length, start + TIME_BLOCK), x, lengths, heads, window, causal, scale,
                     dropout, threshold, keep_scale, key1, key2, out, lse)  # fmt: skip


@numba.njit(fastmath=FASTMATH)
def _add_rows(weights, keys, lanes, src, t0, column, hd, dst, first, dst_column):
    """``dst[first + r, dst_column + i] += sum_l weights[r, l] * src[t0 + l, column + i]``
    for the tile's first ``lanes`` queries: what they send back to each key's row. With
    ``hd`` a multiple of ``WIDTH``, the features go in registers, four vectors at once."""
    if hd % WIDTH:
        for r in range(keys):
            target = dst[first + r]
            for lane in range(lanes):
                c = weights[r, lane]
                row = src[t0 + lane]
                for i in range(hd):
                    target[dst_column + i] += c * row[column + i]
        return
    for r in range(keys):
        target = dst[first + r]
        i = 0
        while i + 4 * WIDTH <= hd:
            c0, c1, c2, c3 = (dst_column + i, dst_column + i + WIDTH, dst_column + i + 2 * WIDTH,
                              dst_column + i + 3 * WIDTH)  # fmt: skip
            a0, a1, a2, a3 = load(target, c0), load(target, c1), load(target, c2), load(target, c3)
            for lane in range(lanes):
                c = weights[r, lane]
                row = src[t0 + lane]
                j = column + i
                a0 = a0 + load(row, j) * c
                a1 = a1 + load(row, j + WIDTH) * c
                a2 = a2 + load(row, j + 2 * WIDTH) * c
                a3 = a3 + load(row, j + 3 * WIDTH) * c
            store(target, c0, a0)
            store(target, c1, a1)
            store(target, c2, a2)
            store(target, c3, a3)
            i += 4 * WIDTH
        while i < hd:
            a0 = load(target, dst_column + i)
            for lane in range(lanes):
                a0 = a0 + load(src[t0 + lane], column + i) * weights[r, lane]
            store(target, dst_column + i, a0)
            i += WIDTH


@numba.njit(fastmath=FASTMATH, cache=True)
def _backward_job(b, h, x, lengths, heads, window, causal, scale, dropout, threshold, keep_scale,
                  key1, key2, lse, dout, dx):  # fmt: skip
    """One job of :func:`banded_backward`: sequence ``b``, head ``h``, every tile."""
    wide_registers()
    length = x.shape[1]
    hd, qo, ko, vo = _columns(x.shape[2], heads, h)
    n = min(lengths[b], length)
    xb = x[b]
    gb = dout[b]
    db = dx[b]
    most = WIDTH + 2 * window
    qt = aligned_empty(hd, WIDTH)
    scores = aligned_empty(most, WIDTH)
    grads = aligned_empty(most, WIDTH)
    mask = aligned_empty(most, WIDTH)
    factor = aligned_empty(most, WIDTH) if dropout else mask
    edge = aligned_empty(1, WIDTH)
    for t0 in range(0, n, WIDTH):
        first, keys, _ = _tile_scores(b, h, t0, xb, n, length, heads, window, causal, scale,
                                      dropout, threshold, keep_scale, key1, key2, qo, ko, hd,
                                      qt, scores, mask, factor)  # fmt: skip
        for lane in range(WIDTH):
            t = t0 + lane
            edge[0, lane] = lse[b, t, h] if t < n else _F(0.0)
        m = load(edge[0], 0)
        for r in range(keys):  # the weights p, from the forward's log-sum-exp
            store(scores[r], 0, exp(load(scores[r], 0) - m) * load(mask[r], 0))
        _transpose_in(gb, t0, qo, hd, n, _F(1.0), qt)  # dout, transposed
        _rows_times_tile(xb, vo, first, keys, hd, qt, grads)  # dout[t] . v[s]
        inner = splat(_F(0.0))  # sum_s p_s g_s = dout[t] . out[t]
        for r in range(keys):
            g = load(grads[r], 0) * load(factor[r], 0)
            store(grads[r], 0, g)
            inner = inner + load(scores[r], 0) * g
        for r in range(keys):
            p = load(scores[r], 0)
            store(grads[r], 0, p * (load(grads[r], 0) - inner) * scale)  # d score
            store(mask[r], 0, p * load(factor[r], 0))  # the weight the forward applied
        lanes = min(WIDTH, n - t0)
        _add_rows(mask, keys, lanes, gb, t0, qo, hd, db, first, vo)  # d v
        _add_rows(grads, keys, lanes, xb, t0, qo, hd, db, first, ko)  # d k
        _tile_times_rows(grads, xb, ko, first, keys, hd, qt)  # d q, transposed
        for lane in range(lanes):
            for i in range(hd):
                db[t0 + lane, qo + i] += qt[i, lane]


@numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
def banded_backward(x, lengths, heads, window, causal, scale, dropout, threshold, keep_scale,
                    key1, key2, lse, dout, dx):  # fmt: skip
    """``dx`` (zeroed by the caller, the layout of ``x``) += the gradient of
    :func:`banded_forward` at ``dout: (B, L, H * hd)``."""
    for job in numba.prange(x.shape[0] * heads):
        _backward_job(job // heads, job % heads, x, lengths, heads, window, causal, scale,
                      dropout, threshold, keep_scale, key1, key2, lse, dout, dx)  # fmt: skip


# numba checks this file alone for edits; forget_stale checks the helpers' files too
forget_stale(__name__, ("banded_forward", "_forward_job", "banded_backward", "_backward_job"))
