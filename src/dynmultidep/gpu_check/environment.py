"""The machine a check runs on: GPU, driver, torch, CUDA, compiler and packages.

Probed in a child process (``python -m dynmultidep.gpu_check.environment`` prints
JSON), so that the check's own process never holds a CUDA context while its
training runs and benchmarks use the GPU.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from importlib import metadata

from dynmultidep.tasks.run.runinfo import PACKAGES as RUN_PACKAGES

# the run's packages, and what building and importing the CUDA kernel packages needs
PACKAGES = (*RUN_PACKAGES, "triton", "einops", "transformers", "huggingface-hub", "ninja",
            "setuptools", "wheel", "packaging")  # fmt: skip


def _first_line(args: list[str], pick: str | None = None) -> str | None:
    """The first output line of ``args`` (containing ``pick`` if given), or None."""
    if shutil.which(args[0]) is None:  # a name on PATH, or a path
        return None
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if pick is not None:
        lines = [line for line in lines if pick in line]
    return lines[0] if lines else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def probe() -> dict:
    """The facts a GPU report starts with; GPU fields are None without CUDA."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME

    from dynmultidep.ops.backends import OPTIONAL_KERNELS, try_import

    # nvcc on PATH, else where torch's extension builder finds CUDA
    nvcc = "nvcc"
    if shutil.which(nvcc) is None and CUDA_HOME:
        nvcc = os.path.join(CUDA_HOME, "bin", "nvcc")
    facts = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "gpu": None, "capability": None, "multiprocessors": None, "gpu_memory_gib": None,
        "driver": _first_line(["nvidia-smi", "--query-gpu=driver_version",
                               "--format=csv,noheader"]),
        "nvcc": _first_line([nvcc, "--version"], pick="release"),
        "nvcc_path": shutil.which(nvcc),
        "versions": {name: _version(name) for name in PACKAGES},
    }  # fmt: skip
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                     multiprocessors=props.multi_processor_count,
                     gpu_memory_gib=round(props.total_memory / 2**30, 1))  # fmt: skip
        facts["optional_kernels"] = {
            package: try_import(package)[1] or "imports" for package in OPTIONAL_KERNELS
        }
    return facts


if __name__ == "__main__":
    print(json.dumps(probe()))
