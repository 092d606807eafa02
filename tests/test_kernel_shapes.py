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


def run_forced(shape: str, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, FORCE_VARIABLE: shape, "NUMBA_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_kernel_tests_pass_under_every_shape(shape, tmp_path):
    """Each shape, forced on this host, passes the kernels' tests against their
    references, and compiles into its own cache folder."""
    probe = run_forced(shape, tmp_path, "-c", "from dynmultidep.ops import vectors, host; "
                       "print(vectors.WIDTH, host.describe_host())")  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split()[0] == str(SHAPES[shape].lanes)
    assert f"kernel shape {shape} (forced" in probe.stdout
    tests = run_forced(shape, tmp_path, "-m", "pytest", "-q", "-m", "not slow", "-p",
                       "no:cacheprovider", *KERNEL_TESTS)  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert any((tmp_path / f"shape-{shape}").rglob("*.nbi")), "nothing cached for the shape"
