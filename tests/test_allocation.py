"""Importing the package asks PyTorch for huge pages, unless the environment says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
PROBE = """
import dynmultidep, os, torch
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
huge = sum(int(line.split()[1]) for line in open("/proc/self/smaps")
           if line.startswith("AnonHugePages:"))
print(os.environ["THP_MEM_ALLOC_ENABLE"], huge)
"""


def run_probe(**env) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run([sys.executable, "-c", PROBE], env={**environment, **env},
                          capture_output=True, text=True, check=True)  # fmt: skip
    flag, huge_kib = done.stdout.split()
    return flag, int(huge_kib)


def test_import_asks_for_huge_pages_and_respects_an_explicit_setting():
    flag, huge_kib = run_probe()
    assert flag == "1"
    if THP.exists() and "[never]" not in THP.read_text():
        assert huge_kib >= 32 * 1024  # most of the 64 MiB tensor sits on huge pages
    flag, huge_kib = run_probe(THP_MEM_ALLOC_ENABLE="0")
    assert flag == "0"


@pytest.mark.skipif(not THP.exists() or "[never]" in THP.read_text(), reason="no THP here")
def test_without_it_the_tensor_is_on_small_pages():
    if "[always]" in THP.read_text():
        pytest.skip("the kernel gives huge pages to every large mapping")
    assert run_probe(THP_MEM_ALLOC_ENABLE="0")[1] < 32 * 1024
