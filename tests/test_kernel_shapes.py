"""Kernel shapes: chosen from the host, forced by DYNMULTIDEP_KERNEL_SHAPE, and every
shape checked against the references on whatever host runs the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dynmultidep.ops.host import (
    FORCE_VARIABLE,
    SHAPES,
    describe_host,
    forced_shape,
    kernel_shape,
    shape_cache_dir,
)

ROOT = Path(__file__).resolve().parents[1]
# the tests of the fused kernels against their references (values, gradients, both
# layouts, both directions, lengths, partial blocks and chunks), rerun per shape
KERNEL_TESTS = [
    "tests/test_ssm.py", "tests/test_vectors.py", "tests/test_attention_kernel.py",
    "tests/test_causal_conv.py", "tests/test_dropout.py",
]  # fmt: skip


def test_a_shape_is_forced_by_name_and_an_unknown_name_is_refused(monkeypatch):
    monkeypatch.delenv(FORCE_VARIABLE, raising=False)
    assert forced_shape() is None and not describe_host().forced
    monkeypatch.setenv(FORCE_VARIABLE, "portable")
    assert kernel_shape() == SHAPES["portable"] and kernel_shape().lanes == 4
    host = describe_host()
    assert host.forced and f"kernel shape portable (forced by {FORCE_VARIABLE})" in str(host)
    monkeypatch.setenv(FORCE_VARIABLE, "avx1024")
    with pytest.raises(ValueError, match=f"^{FORCE_VARIABLE}='avx1024' is not a kernel shape; "
                                         "use one of avx512, avx2, portable$"):  # fmt: skip
        kernel_shape()


def test_a_forced_shape_caches_in_a_folder_of_its_own(monkeypatch, tmp_path):
    from numba.core import config

    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    assert shape_cache_dir(SHAPES["avx2"]) == tmp_path / "shape-avx2"
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / "dynmultidep" / "numba" / "shape-portable"
    assert shape_cache_dir(SHAPES["portable"]) == expected


# each shape and how it is brought about: avx512 and avx2 forced by name (on an AVX2
# host avx512's vectors are split in two), portable chosen for a CPU without vector
# extensions (numba compiling for LLVM's generic CPU: SSE2 on x86-64)
HOW = {
    "avx512": {FORCE_VARIABLE: "avx512"},
    "avx2": {FORCE_VARIABLE: "avx2"},
    "portable": {"NUMBA_CPU_NAME": "generic"},
}


def run_with(how: dict, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FORCE_VARIABLE}
    env.update(how, NUMBA_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(HOW))
def test_the_kernel_tests_pass_under_every_shape(shape, tmp_path):
    """Each shape, on this host, passes the kernels' tests against their references;
    a forced shape compiles into its own cache folder."""
    probe = run_with(HOW[shape], tmp_path, "-c", "from dynmultidep.ops import vectors, host; "
                     "print(vectors.WIDTH, host.describe_host())")  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split()[0] == str(SHAPES[shape].lanes)
    assert f"kernel shape {shape} (" in probe.stdout
    tests = run_with(HOW[shape], tmp_path, "-m", "pytest", "-q", "-m", "not slow", "-p",
                     "no:cacheprovider", *KERNEL_TESTS)  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
    folder = tmp_path / f"shape-{shape}" if FORCE_VARIABLE in HOW[shape] else tmp_path
    assert any(folder.rglob("*.nbi")), f"nothing cached in {folder}"
