"""Freshness of numba's kernel caches (dynmultidep.ops.kernel_cache)."""

from __future__ import annotations

import importlib
import sys
import time

import pytest

from dynmultidep.ops import kernel_cache as kc

pytest.importorskip("numba")


def test_a_cache_is_current_for_the_kernel_and_its_helpers_and_forgotten_when_not(
    tmp_path, monkeypatch
):
    package = tmp_path / "scratchpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    helper = package / "helper.py"
    helper_body = "import numba\n\n@numba.njit(inline='always')\ndef factor():\n    return {}\n"
    helper.write_text(helper_body.format(2))
    kernel = package / "kernel.py"
    kernel_body = (
        "import numba\n\nfrom dynmultidep.ops.kernel_cache import forget_stale\n"
        "from scratchpkg.helper import factor\n\n"
        "@numba.njit(cache=True)\ndef times(x):\n    return {} * factor() * x\n\n"
        "forget_stale(__name__, ('times',))\n"
    )
    kernel.write_text(kernel_body.format(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert kc.sources("scratchpkg.kernel") == {kernel, helper}

    def load():
        for name in ("scratchpkg.kernel", "scratchpkg.helper"):
            sys.modules.pop(name, None)
        return importlib.import_module("scratchpkg.kernel")

    assert not kc.is_current("scratchpkg.kernel:times")
    assert load().times(3) == 6
    assert kc.is_current("scratchpkg.kernel:times")
    kernel.write_text(kernel_body.format(10))  # the kernel's own file: numba's stamp
    assert not kc.is_current("scratchpkg.kernel:times")
    assert load().times(3) == 60
    assert kc.is_current("scratchpkg.kernel:times")
    time.sleep(0.01)
    helper.write_text(helper_body.format(5))  # a helper: numba alone would load 60
    assert not kc.is_current("scratchpkg.kernel:times")
    assert load().times(3) == 150  # the module forgot its stale cache when imported
    assert kc.is_current("scratchpkg.kernel:times")


def test_the_project_kernels_are_compiled_from_their_helpers_files():
    names = {p.name for p in kc.sources("dynmultidep.ops.scan.backward_kernel")}
    # host.py: the vector width the kernels are compiled for
    assert names == {"backward_kernel.py", "forward_kernel.py", "cpu_kernel.py",
                     "kernel_math.py", "vectors.py", "host.py"}  # fmt: skip
    names = {p.name for p in kc.sources("dynmultidep.ops.dropout_kernel")}
    assert names == {"dropout_kernel.py", "kernel_math.py"}
