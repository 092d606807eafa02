"""The host the numba kernels compile for, and the shape they take there.

numba compiles for the CPU LLVM reports (or the one ``NUMBA_CPU_NAME`` and
``NUMBA_CPU_FEATURES`` name). From its widest vector instruction set follows the
*kernel shape*: the float32 lanes of the kernels' explicit vector registers
(:data:`dynmultidep.ops.vectors.WIDTH`) and the states the scan keeps per group of
registers. One shape per kind of register file:

==========  =====  ======  ==============================================
shape       lanes  states  for
==========  =====  ======  ==============================================
avx512      16     4       AVX-512: one 512-bit register per vector, 32 registers
avx2        8      4       AVX2: one 256-bit register, 16 registers
portable    4      4       everything else LLVM runs (SSE2, NEON, SVE): 128 bits
==========  =====  ======  ==============================================

``DYNMULTIDEP_KERNEL_SHAPE=avx512|avx2|portable`` forces a shape on any host
(LLVM splits a vector wider than the host's registers), which is how the tests
check every shape against the reference on whatever machine runs them. A forced
shape compiles into a cache folder of its own (:func:`shape_cache_dir`), so that
it never loads kernels compiled for another shape. The benchmarks print the
description (:func:`describe_host`) beside their figures, since a timing
describes one kind of host.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import llvmlite.binding as llvm
from numba.core import config

FORCE_VARIABLE = "DYNMULTIDEP_KERNEL_SHAPE"
# instruction set -> (bits of one vector register, vector registers)
REGISTER_FILES = {
    "avx512": (512, 32), "avx2": (256, 16), "sve": (128, 32), "neon": (128, 32),
    "portable": (128, 16),
}  # fmt: skip


@dataclass(frozen=True)
class KernelShape:
    name: str
    lanes: int  # float32 lanes of the kernels' vectors
    scan_states: int  # states the scan kernels keep per group of vector registers


# 4 states per group on every shape: on an AVX2 host 2 states ran the forward scan
# slower (BENCHMARKS.md, "Kernel shapes")
SHAPES = {
    "avx512": KernelShape("avx512", 16, 4),
    "avx2": KernelShape("avx2", 8, 4),
    "portable": KernelShape("portable", 4, 4),
}


def target_cpu() -> tuple[str, frozenset[str]]:
    """The CPU numba compiles for, as numba chooses it: its name, and the features
    LLVM enables there (``avx512f``, ``avx2``, ``neon`` ...)."""
    name = config.CPU_NAME or llvm.get_host_cpu_name()
    flags = config.CPU_FEATURES
    if flags is None:
        flags = llvm.get_host_cpu_features().flatten()
    return name, frozenset(f[1:] for f in flags.split(",") if f.startswith("+"))


def instruction_set(features: Iterable[str]) -> str:
    """The widest vector instruction set of ``features``: ``avx512`` (AVX-512F),
    ``avx2``, ``sve``, ``neon``, or ``portable`` (anything else LLVM runs)."""
    features = set(features)
    for name, needs in (("avx512", "avx512f"), ("avx2", "avx2"), ("sve", "sve"),
                        ("neon", "neon")):  # fmt: skip
        if needs in features:
            return name
    return "portable"


def shape_for(isa: str) -> KernelShape:
    """The shape the kernels take on a host of instruction set ``isa``."""
    return SHAPES.get(isa, SHAPES["portable"])


def forced_shape() -> KernelShape | None:
    """The shape :data:`FORCE_VARIABLE` names, or None when it is unset."""
    name = os.environ.get(FORCE_VARIABLE, "").strip()
    if not name:
        return None
    if name not in SHAPES:
        raise ValueError(
            f"{FORCE_VARIABLE}={name!r} is not a kernel shape; use one of {', '.join(SHAPES)}"
        )
    return SHAPES[name]


def kernel_shape() -> KernelShape:
    """The shape the kernels take in this process: the forced one, else the host's."""
    return forced_shape() or shape_for(instruction_set(target_cpu()[1]))


def shape_cache_dir(shape: KernelShape) -> Path:
    """Where numba caches kernels of a forced ``shape``: a ``shape-<name>`` folder
    under ``NUMBA_CACHE_DIR``, or under the user's cache folder."""
    root = config.CACHE_DIR or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "dynmultidep", "numba"
    )
    return Path(root) / f"shape-{shape.name}"


def use_shape_cache() -> None:
    """With a forced shape, point numba's cache at that shape's folder (call before
    the kernels are defined: numba reads it when a cached kernel is decorated)."""
    shape = forced_shape()
    if shape is not None:
        config.CACHE_DIR = str(shape_cache_dir(shape))


@dataclass(frozen=True)
class Host:
    cpu: str  # LLVM's name of the CPU numba compiles for
    instruction_set: str  # avx512 | avx2 | sve | neon | portable
    vector_bits: int  # one vector register of that instruction set
    registers: int  # vector registers of that instruction set
    shape: KernelShape  # what the kernels take here
    forced: bool  # the shape was forced (FORCE_VARIABLE), not chosen from the host

    @property
    def lanes(self) -> int:
        return self.shape.lanes

    @property
    def scan_states(self) -> int:
        return self.shape.scan_states

    def __str__(self) -> str:
        isa = {"avx512": "AVX-512", "avx2": "AVX2", "sve": "SVE", "neon": "NEON"}
        name = isa.get(self.instruction_set, "no known vector extension")
        how = f"forced by {FORCE_VARIABLE}" if self.forced else "the host's"
        return (f"{self.cpu} ({name}, {self.registers} x {self.vector_bits}-bit registers): "
                f"kernel shape {self.shape.name} ({how}), {self.lanes} float32 lanes x "
                f"{self.scan_states} scan states")  # fmt: skip


def describe_host() -> Host:
    """The CPU the kernels compile for, and the shape they take on it."""
    cpu, features = target_cpu()
    isa = instruction_set(features)
    bits, registers = REGISTER_FILES[isa]
    return Host(cpu, isa, bits, registers, kernel_shape(), forced_shape() is not None)
