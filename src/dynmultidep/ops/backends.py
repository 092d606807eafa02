"""The optional CUDA kernel packages, and a record of the kernels that actually ran.

``mamba_ssm`` (the selective scan) and ``causal_conv1d`` (the Mamba block's
convolution) are used on CUDA tensors when they import; neither is required.
:func:`optional_kernel` imports one the first time a CUDA call wants it. When
the import fails (not installed, or built for another torch or CUDA) it logs one
warning per process naming the package, the reason and what runs instead;
later calls take that fallback without a word, and the record keeps it. Nothing
is imported for CPU tensors.

Every scan and convolution call records the backend it ran (:func:`record`), so
a run can say which kernels it used (:func:`kernels_used`, written into
``metrics.json`` with the run's provenance) and which packages it fell back
from.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

# device types the optional kernels run on (the dispatch tests widen it to "cpu",
# with stand-in packages, to run the CUDA paths' glue on a machine without a GPU)
KERNEL_DEVICE_TYPES = ("cuda",)

# package -> (module, function, what runs on CUDA without it)
OPTIONAL_KERNELS = {
    "mamba_ssm": (
        "mamba_ssm.ops.selective_scan_interface",
        "selective_scan_fn",
        "the selective scan on CUDA uses the chunked PyTorch scan (scan backend 'chunked')",
    ),
    "causal_conv1d": (
        "causal_conv1d",
        "causal_conv1d_fn",
        "the causal convolution on CUDA uses PyTorch's conv1d (conv backend 'reference')",
    ),
}

_used: dict[str, set[str]] = {}  # op -> backends run since the last reset
_fallbacks: dict[str, str] = {}  # package -> why it did not import, when asked since the reset


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


@functools.cache
def try_import(package: str) -> tuple[Callable | None, str | None]:
    """``(function, None)``, or ``(None, reason)`` logged once per process."""
    module_name, function, fallback = OPTIONAL_KERNELS[package]
    try:
        return getattr(importlib.import_module(module_name), function), None
    # not installed (ImportError), built for another torch or CUDA (undefined symbols:
    # ImportError, OSError), a failing CUDA probe (RuntimeError), or anything a package
    # it imports raises: whatever it is, the reason is said and the fallback runs
    except Exception as err:
        reason = _reason(err)
        log.warning("%s is not usable (%s); %s", package, reason, fallback)
        return None, reason


def optional_kernel(package: str) -> Callable | None:
    """The kernel function of ``package`` (a key of :data:`OPTIONAL_KERNELS`), or
    None when it does not import (noted in the record as a fallback)."""
    function, reason = try_import(package)
    if function is None:
        _fallbacks[package] = reason
    return function


def on_kernel_device(device: torch.device) -> bool:
    """Whether tensors on ``device`` go to the optional CUDA kernels when they import."""
    return device.type in KERNEL_DEVICE_TYPES


def record(op: str, backend: str) -> None:
    """Note that ``op`` (``scan`` or ``conv``) ran on ``backend``."""
    _used.setdefault(op, set()).add(backend)


def kernels_used() -> dict:
    """``{"scan": [...], "conv": [...], "fallbacks": {package: reason}}``: the
    backends run since :func:`reset_record`, and the optional packages asked for
    since then that did not import."""
    report: dict = {op: sorted(backends) for op, backends in sorted(_used.items())}
    report["fallbacks"] = dict(_fallbacks)
    return report


def reset_record() -> None:
    """Forget the backends run and the fallbacks so far (a run starts its own record)."""
    _used.clear()
    _fallbacks.clear()


@functools.cache
def fused_available() -> bool:
    """Whether the fused CPU kernels (numba) can run here: the scan's, the
    convolution's, dropout's and attention's."""
    return importlib.util.find_spec("numba") is not None
