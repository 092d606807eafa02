"""Provenance of a run: git commit, package versions, the command-line overrides, the
scan and convolution kernels that ran (:mod:`dynmultidep.ops.backends`), and the CPU
the numba kernels compiled for with the shape they took there (:mod:`dynmultidep.ops.host`:
forced or the host's)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

from dynmultidep.ops.backends import kernels_used
from dynmultidep.ops.host import describe_host

PACKAGES = ("dynmultidep", "torch", "lightning", "hydra-core", "omegaconf", "torchmetrics",
            "numpy", "numba", "mamba-ssm", "causal-conv1d")  # fmt: skip


def git_commit(where: str | Path = ".") -> str | None:
    """The commit checked out at ``where`` (with ``-dirty`` if files changed), or ``None``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hydra_overrides() -> list[str]:
    """The overrides of the running Hydra job (empty outside one)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def provenance() -> dict:
    return {
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "overrides": hydra_overrides(),
        "versions": package_versions(),
        "kernels": kernels_used(),
        "kernel_shape": str(describe_host()),
    }
