"""The explicit vector registers of the numba kernels against their scalar forms."""

import numba
import numpy as np
import pytest

from dynmultidep.ops import vectors as V
from dynmultidep.ops.kernel_math import FASTMATH, fast_exp, fast_softplus, sigmoid


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
def _exp2_one_and_four(y, one, four):
    V.wide_registers()
    n = y.shape[0] // 4
    for i in range(0, n, V.WIDTH):
        for k in range(4):
            V.store(one, k * n + i, V.exp2_scaled(V.load(y, k * n + i)))
        e0, e1, e2, e3 = V.exp2_scaled4(
            V.load(y, i), V.load(y, n + i), V.load(y, 2 * n + i), V.load(y, 3 * n + i)
        )
        V.store(four, i, e0)
        V.store(four, n + i, e1)
        V.store(four, 2 * n + i, e2)
        V.store(four, 3 * n + i, e3)


def test_four_interleaved_exps_give_the_bits_of_one_at_a_time():
    rng = np.random.default_rng(3)
    y = np.concatenate([
        rng.uniform(-30.0, 3.0, V.WIDTH * 20_000),  # the scan's decays
        rng.uniform(-200.0, 200.0, V.WIDTH * 4_000),  # past both clamps
        np.array([-0.5, 0.5, -1.5, 2.5, 0.0, -0.0, -125.9, 127.4] * (V.WIDTH // 2)),  # ties
    ]).astype(np.float32)  # fmt: skip
    one, four = np.empty_like(y), np.empty_like(y)
    _exp2_one_and_four(y, one, four)
    np.testing.assert_array_equal(four.view(np.int32), one.view(np.int32))


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
    V.store(out[7], 0, x / y)


def test_vector_arithmetic_is_lanewise():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(V.WIDTH + 1).astype(np.float32)
    b = rng.standard_normal(V.WIDTH).astype(np.float32)
    s = np.float32(0.75)
    out = np.zeros((8, V.WIDTH), np.float32)
    _arithmetic(a, b, s, out)
    x = a[1:]
    want = [x + b, x - b, x * s, s - x, np.minimum(x, b), np.maximum(x, b), np.full_like(b, s)]
    want.append(x / b)
    for got, expected in zip(out[:7], want[:7], strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(out[7], want[7], rtol=3e-7)  # arcp: a reciprocal, refined


@numba.njit(fastmath=FASTMATH)
def _vector_activations(x, sig, soft):
    V.wide_registers()
    for i in range(0, x.shape[0], V.WIDTH):
        v = V.load(x, i)
        V.store(sig, i, V.sigmoid(v))
        V.store(soft, i, V.softplus(v))


@numba.njit(fastmath=FASTMATH)
def _scalar_activations(x, sig, soft):
    for i in range(x.shape[0]):
        sig[i] = sigmoid(x[i])
        soft[i] = fast_softplus(x[i])


def test_vector_sigmoid_and_softplus_agree_with_the_scalar_kernel_forms():
    x = np.linspace(-60.0, 60.0, V.WIDTH * 50_000, dtype=np.float32)
    out = [np.empty_like(x) for _ in range(4)]
    _vector_activations(x, out[0], out[1])
    _scalar_activations(x, out[2], out[3])
    wide = x.astype(np.float64)
    for vec, sca, exact in (
        (out[0], out[2], 1 / (1 + np.exp(-wide))),
        (out[1], out[3], np.logaddexp(0.0, wide)),
    ):
        np.testing.assert_allclose(vec, sca, rtol=4e-7, atol=1e-30)
        # the exp's tested bound at the argument it takes, plus the division's rounding
        bound = 1.5e-7 + 8e-8 * np.abs(wide) + 3e-7
        assert np.all(np.abs(vec / exact - 1) <= bound)


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


@numba.njit
def _transpose(src, dst, r, c, dr, dc, flip):
    if flip == 1:
        V.transpose_block(src, r, c, dst, dr, dc, True, False)
    elif flip == 2:
        V.transpose_block(src, r, c, dst, dr, dc, False, True)
    else:
        V.transpose_block(src, r, c, dst, dr, dc, False, False)


@pytest.mark.parametrize("flip", [0, 1, 2])
def test_a_block_is_transposed_between_arrays_in_registers(flip):
    """dst[dr + i, dc + k] = src[r + k, c + i] over WIDTH x WIDTH; flip 1 takes the source
    rows in reverse order, flip 2 writes the destination rows in reverse order."""
    W = V.WIDTH
    src = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    dst = np.zeros((W + 9, W + 5), np.float32)
    _transpose(src, dst, 3, 5, 2, 1, flip)
    block = src[3 : 3 + W, 5 : 5 + W]
    block = block[::-1] if flip == 1 else block
    moved = block.T[::-1] if flip == 2 else block.T
    expected = np.zeros_like(dst)
    expected[2 : 2 + W, 1 : 1 + W] = moved
    np.testing.assert_array_equal(dst, expected)  # and nothing outside the block


def test_vector_loads_refuse_strided_rows():
    @numba.njit
    def load_column(a):
        return V.load(a[:, 0], 0)

    with pytest.raises(numba.core.errors.TypingError):
        load_column(np.zeros((V.WIDTH, 2), np.float32))


def test_the_host_is_named_with_the_shape_its_kernels_take():
    from dynmultidep.ops.host import SHAPES, describe_host, instruction_set, shape_for
    from dynmultidep.ops.scan.forward_kernel import STATES

    assert instruction_set({"avx512f", "avx2", "fma"}) == "avx512"
    assert instruction_set({"avx2", "fma", "avx"}) == "avx2"
    assert instruction_set({"neon", "fp-armv8"}) == "neon"
    assert instruction_set({"sve", "neon"}) == "sve"
    assert instruction_set({"sse4.2"}) == "portable"
    lanes = [shape_for(isa).lanes for isa in ("avx512", "avx2", "neon", "sve", "portable")]
    assert lanes == [16, 8, 4, 4, 4]  # one register of the host's widest vectors
    assert all(shape.scan_states == 4 for shape in SHAPES.values())
    host = describe_host()
    assert host.lanes == V.WIDTH and host.scan_states == STATES  # what the kernels use
    assert host.cpu and host.vector_bits in (128, 256, 512) and host.registers in (16, 32)
    assert f"{host.lanes} float32 lanes x {STATES} scan states" in str(host)
