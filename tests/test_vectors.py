"""The explicit vector registers of the numba kernels against their scalar forms."""

import numba
import numpy as np
import pytest

from dynmultidep.models.ssm import vectors as V
from dynmultidep.models.ssm.kernel_math import FASTMATH, fast_exp


@numba.njit(fastmath=FASTMATH)
def _vector_exp(x, out):
    V.wide_registers()
    for i in range(0, x.shape[0], V.WIDTH):
        V.store(out, i, V.exp(V.load(x, i)))


@numba.njit(fastmath=FASTMATH)
def _scalar_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = fast_exp(x[i])


def test_vector_exp_agrees_with_the_scalar_kernel_exp_to_an_ulp():
    x = np.linspace(-87.0, 88.0, V.WIDTH * 100_000, dtype=np.float32)
    vec, sca = np.empty_like(x), np.empty_like(x)
    _vector_exp(x, vec)
    _scalar_exp(x, sca)
    ulps = np.abs(vec.view(np.int32).astype(np.int64) - sca.view(np.int32).astype(np.int64))
    assert ulps.max() <= 1
    bound = 1.5e-7 + 8e-8 * np.abs(x.astype(np.float64))  # the scalar exp's tested bound
    assert np.all(np.abs(vec / np.exp(x.astype(np.float64)) - 1) <= bound)
    far = np.array([-1e4, -200.0, 200.0, 1e4] * (V.WIDTH // 4), dtype=np.float32)
    out = np.empty_like(far)
    _vector_exp(far, out)
    assert np.all(np.isfinite(out)) and out.min() >= np.finfo(np.float32).tiny


@numba.njit(fastmath=FASTMATH)
def _arithmetic(a, b, s, out):
    x, y = V.load(a, 1), V.load(b, 0)  # an unaligned offset
    V.store(out[0], 0, x + y)
    V.store(out[1], 0, x - y)
    V.store(out[2], 0, x * s)
    V.store(out[3], 0, s - x)
    V.store(out[4], 0, V.vmin(x, y))
    V.store(out[5], 0, V.vmax(x, y))
    V.store(out[6], 0, V.splat(s))


def test_vector_arithmetic_is_lanewise():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(V.WIDTH + 1).astype(np.float32)
    b = rng.standard_normal(V.WIDTH).astype(np.float32)
    s = np.float32(0.75)
    out = np.zeros((7, V.WIDTH), np.float32)
    _arithmetic(a, b, s, out)
    x = a[1:]
    want = [x + b, x - b, x * s, s - x, np.minimum(x, b), np.maximum(x, b), np.full_like(b, s)]
    for got, expected in zip(out, want, strict=True):
        np.testing.assert_array_equal(got, expected)


@numba.njit
def _aligned_addresses(rows, cols):
    tile = V.aligned_empty(rows, cols)
    tile[:] = 1.0
    return tile.ctypes.data % 64, tile[rows - 1].ctypes.data % 64, tile.sum()


@pytest.mark.parametrize(("rows", "cols"), [(1, 16), (64, 256), (3, 32)])
def test_aligned_tiles_start_on_a_cache_line(rows, cols):
    first, last, total = _aligned_addresses(rows, cols)
    assert (first, last) == (0, 0)
    assert total == rows * cols


def test_vector_loads_refuse_strided_rows():
    @numba.njit
    def load_column(a):
        return V.load(a[:, 0], 0)

    with pytest.raises(numba.core.errors.TypingError):
        load_column(np.zeros((V.WIDTH, 2), np.float32))
