"""The host the numba kernels compile for, named: the CPU as LLVM sees it, its
vector instruction set, and the vector width and register blocking the kernels
use there. The kernels take their vector width from here
(:data:`dynmultidep.ops.vectors.WIDTH`); the benchmarks print the description
beside their figures, since a timing describes one kind of host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import llvmlite.binding as llvm

# states the scan kernels keep per group of vector registers (4 states, 4 rows of A and
# temporaries), on every host so far
SCAN_STATES = 4
# instruction set -> bits of one vector register
VECTOR_BITS = {"avx512": 512, "avx2": 256, "sve": 128, "neon": 128, "portable": 128}


def cpu_features() -> frozenset[str]:
    """The features LLVM enables on this host (``avx512f``, ``avx2``, ``neon`` ...)."""
    flags = llvm.get_host_cpu_features().flatten().split(",")
    return frozenset(f[1:] for f in flags if f.startswith("+"))


def instruction_set(features: Iterable[str]) -> str:
    """The widest vector instruction set of ``features``: ``avx512`` (AVX-512F),
    ``avx2``, ``sve``, ``neon``, or ``portable`` (anything else LLVM runs)."""
    features = set(features)
    for name, needs in (("avx512", "avx512f"), ("avx2", "avx2"), ("sve", "sve"),
                        ("neon", "neon")):  # fmt: skip
        if needs in features:
            return name
    return "portable"


def kernel_lanes(isa: str) -> int:
    """float32 lanes of the kernels' vectors: one AVX-512 register (16), else 8 (one
    AVX2 register; two 128-bit registers, which LLVM splits them into, elsewhere)."""
    return 16 if isa == "avx512" else 8


@dataclass(frozen=True)
class Host:
    cpu: str  # LLVM's name of the host CPU, the target numba compiles for
    instruction_set: str  # avx512 | avx2 | sve | neon | portable
    vector_bits: int  # one vector register of that instruction set
    lanes: int  # float32 lanes of the kernels' vectors
    scan_states: int  # states the scan kernels keep per group of vector registers

    def __str__(self) -> str:
        isa = {"avx512": "AVX-512", "avx2": "AVX2", "sve": "SVE", "neon": "NEON"}
        name = isa.get(self.instruction_set, "no known vector extension")
        return (f"{self.cpu} ({name}, {self.vector_bits}-bit registers): kernels of "
                f"{self.lanes} float32 lanes x {self.scan_states} scan states")  # fmt: skip


def describe_host() -> Host:
    """This host, and the shape the kernels take on it."""
    isa = instruction_set(cpu_features())
    return Host(llvm.get_host_cpu_name(), isa, VECTOR_BITS[isa], kernel_lanes(isa), SCAN_STATES)
