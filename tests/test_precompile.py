"""Ahead-of-time compilation of the numba kernels (dynmultidep.ops.precompile)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dynmultidep.ops import precompile as pc

pytest.importorskip("numba")

# A training step of a small bidirectional model with dropout, in a fresh process;
# prints the compilations (cache misses) and cache loads of every cached kernel.
MODEL_STEP = """
import json, torch
from dynmultidep.ops import precompile as pc
from dynmultidep.models.dynmultidep import DynMultiDep
torch.manual_seed(0)
model = DynMultiDep(25, 136, d_model=16, d_ffn=32, d_state=4, expand=2, dropout=0.1)
model.train()
out = model(torch.randn(3, 9, 25), torch.randn(3, 9, 136), torch.tensor([9, 4, 1]))
out.logits.sum().backward()
counts = {"misses": 0, "hits": 0}
for group in pc.GROUPS.values():
    for kernel in group.kernels:
        module, name = kernel.split(":")
        stats = getattr(__import__(module, fromlist=[name]), name).stats
        counts["misses"] += sum(stats.cache_misses.values())
        counts["hits"] += sum(stats.cache_hits.values())
print(json.dumps(counts))
"""


def test_after_precompile_a_model_step_compiles_nothing():
    pc.precompile()  # the session already ran it (conftest): this only checks the cache
    assert pc.stale() == []
    run = subprocess.run([sys.executable, "-c", MODEL_STEP], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    assert counts["misses"] == 0
    assert counts["hits"] >= 6  # scan, conv and dropout kernels were loaded, not compiled


def test_groups_are_shared_out_longest_first_among_the_workers():
    names = list(pc.GROUPS)
    shares = pc._share_out(names, 2)
    assert sorted(sum(shares, [])) == sorted(names)
    # longest first, each to the lighter share: 50 | 30 + 15 + 8, then 2 to the 50
    assert shares == [["scan_backward", "dropout"], ["scan_forward", "attention", "causal_conv"]]
    assert pc._share_out(names, 1) == [sorted(names, key=lambda n: -pc.GROUPS[n].seconds)]
    assert len(pc._share_out(["dropout"], 8)) == 1


def test_an_unknown_group_is_refused():
    with pytest.raises(ValueError, match="unknown kernel groups \\['nope'\\]"):
        pc.precompile(["nope"])


def test_a_failing_group_is_named_in_a_one_line_error(monkeypatch, capsys):
    def broken():
        raise TypeError("bad argument types")

    monkeypatch.setitem(pc.GROUPS, "broken", pc.Group(broken, (), 1))
    assert pc.main(["--group", "broken"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == "error: kernel group 'broken': TypeError: bad argument types"


def test_a_failing_worker_fails_precompile_with_its_last_error_line(tmp_path, monkeypatch):
    worker = tmp_path / "worker"
    worker.write_text(
        "#!/bin/sh\necho 'warming up' >&2\necho 'LLVM ran out of memory' >&2\nexit 3\n"
    )
    worker.chmod(0o755)
    monkeypatch.setattr(pc.sys, "executable", str(worker))
    with pytest.raises(
        RuntimeError, match="^compiling the kernels failed: LLVM ran out of memory$"
    ):
        pc.precompile(["dropout"], force=True)
