"""The machine's arithmetic throughput for the selective scan's operations.

Measured with the scan kernels' own building blocks (``fast_exp``, fused
multiply-adds) applied elementwise to arrays that stay in the L1 cache, vectorised,
on every thread numba uses: the machine's elementwise throughput for these
operations, as the kernels' inner loops use them (operands loaded from and results
stored to L1), without traffic to memory. The kernels keep some operands in
registers, so they can run slightly under this "bound"; it is a yardstick, not a
proof of optimality. The scan's bound for a shape is its count of exponentials
and multiply-adds times these per-element times.

:func:`fma_rate` is the stricter yardstick, the roofline: independent
multiply-add chains on a block of accumulators the compiler keeps in vector
registers (no memory traffic at all), lanes per second on every thread. The
scan's roofline counts each exponential as ``EXP_LANE_OPS`` lane-operations.
"""

from __future__ import annotations

import numba
import numpy as np

from dynmultidep.bench.timing import median_time
from dynmultidep.ops.host import describe_host
from dynmultidep.ops.kernel_math import FASTMATH, fast_exp
from dynmultidep.ops.vectors import wide_registers

_WIDTH = 1024  # floats per job: 4 KiB, in L1 with room to spare
# accumulators of the roofline probe: as many registers as leave room for the operands
# (at most 16: two per multiply-add unit and cycle of latency, with margin), each full of
# float32 lanes. AVX-512: 16 x 16 = 256; AVX2 (16 registers): 12 x 8 = 96. On an AVX2
# host 256 accumulators spill: the probe ran at 40-42 G lanes/s instead of 94-103 G.
_HOST = describe_host()
_REGISTERS = _HOST.vector_bits // 32 * min(16, _HOST.registers - 4)
EXP_LANE_OPS = 10  # a kernel exp: the argument's multiply, rounding, 6 multiply-adds, scaling
_K = np.float32(-0.5)


@numba.njit(parallel=True, fastmath=FASTMATH)
def _exp_rounds(acc, rounds):
    for job in numba.prange(acc.shape[0]):
        for _ in range(rounds):
            for i in range(acc.shape[1]):
                acc[job, i] = fast_exp(acc[job, i] * _K)  # a chain per element: not hoisted


@numba.njit(parallel=True, fastmath=FASTMATH)
def _muladd_rounds(acc, scale, shift, rounds):
    for job in numba.prange(acc.shape[0]):
        for _ in range(rounds):
            for i in range(acc.shape[1]):
                acc[job, i] = acc[job, i] * scale[job, i] + shift[job, i]


@numba.njit(fastmath=FASTMATH)
def _register_rounds(acc, scale, shift, rounds):
    wide_registers()  # the widest registers the host has, as the scan kernels use
    for _ in range(rounds):
        for i in range(_REGISTERS):  # unrolled: the accumulators stay in registers
            acc[i] = acc[i] * scale + shift
    return acc.sum()


@numba.njit(parallel=True, fastmath=FASTMATH)
def _register_jobs(out, scale, shift, rounds):
    for job in numba.prange(out.shape[0]):
        acc = np.full(_REGISTERS, np.float32(job + 1) * np.float32(1e-3), np.float32)
        out[job] = _register_rounds(acc, scale, shift, rounds)


def fma_rate(rounds: int = 400_000) -> float:
    """Multiply-add lanes per second with all threads busy, operands in registers."""
    out = np.zeros(numba.get_num_threads(), np.float32)
    scale, shift = np.float32(0.999), np.float32(1e-4)
    _register_jobs(out, scale, shift, 2)  # compile
    seconds = median_time(lambda: _register_jobs(out, scale, shift, rounds), 5)
    return out.shape[0] * _REGISTERS * rounds / seconds


def arithmetic_rates(rounds: int = 20000) -> dict[str, float]:
    """Seconds per element of one ``fast_exp`` (with its one multiply) and of one
    multiply-add, all threads busy."""
    jobs = 4 * numba.get_num_threads()
    rng = np.random.default_rng(0)
    acc = rng.uniform(0.1, 0.9, (jobs, _WIDTH)).astype(np.float32)
    scale = rng.uniform(0.5, 0.9, (jobs, _WIDTH)).astype(np.float32)
    shift = rng.uniform(0.0, 0.1, (jobs, _WIDTH)).astype(np.float32)
    _exp_rounds(acc.copy(), 2)  # compile
    _muladd_rounds(acc.copy(), scale, shift, 2)
    elements = jobs * _WIDTH * rounds
    exp_s = median_time(lambda: _exp_rounds(acc, rounds), 5) / elements
    muladd_s = median_time(lambda: _muladd_rounds(acc, scale, shift, rounds), 5) / elements
    return {"exp": exp_s, "muladd": muladd_s}
