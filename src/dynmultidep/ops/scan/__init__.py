"""The selective scan of Mamba, exact and fast, with selectable backends.

Backends (``backend=``):

* ``reference``: :func:`selective_scan_reference`, a plain sequential loop.
* ``fused``: numba-compiled CPU kernels (:mod:`.forward_kernel`,
  :mod:`.backward_kernel`, sharing the tiles of :mod:`.cpu_kernel`), fp32,
  agreeing with the reference to fp32 rounding.
* ``chunked``: :mod:`.chunked`, a parallel scan in plain PyTorch (closed form
  within chunks, a short sequential pass across them), on any device.
* ``cuda``: ``mamba_ssm``'s CUDA kernels, when that optional package is installed.
* ``auto`` (default): on CPU ``fused``, or ``reference`` where numba is not
  installed; on a GPU ``cuda`` when ``mamba_ssm`` imports, else ``chunked`` (with
  one warning per process saying why: :mod:`dynmultidep.ops.backends`); on another
  accelerator ``chunked``.

Each call records the backend it ran (:func:`dynmultidep.ops.backends.record`).

Arithmetic is fp32 whatever the input dtype (autocast is switched off
inside), and the output takes the dtype of ``u``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dynmultidep.ops.backends import fused_available, on_kernel_device, optional_kernel, record
from dynmultidep.ops.scan.reference import selective_scan_reference
from dynmultidep.ops.time_order import reverse_within_length

BACKENDS = ("auto", "reference", "fused", "chunked", "cuda")


def _mamba_ssm_scan():
    """``mamba_ssm``'s ``selective_scan_fn``, or None (warned once) when it does not import."""
    return optional_kernel("mamba_ssm")


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend ``backend`` means for tensors on ``device``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown scan backend {backend!r}; use one of {', '.join(BACKENDS)}")
    on_gpu = on_kernel_device(device)
    if backend == "auto":
        if on_gpu:
            return "cuda" if _mamba_ssm_scan() is not None else "chunked"
        if device.type != "cpu":  # another accelerator: the parallel scan in PyTorch
            return "chunked"
        return "fused" if fused_available() else "reference"
    if backend == "fused" and (device.type != "cpu" or not fused_available()):
        raise ValueError("scan backend 'fused' needs CPU tensors and the numba package")
    if backend == "cuda" and (not on_gpu or _mamba_ssm_scan() is None):
        raise ValueError("scan backend 'cuda' needs CUDA tensors and the mamba-ssm package")
    return backend


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: str = "auto",
    reverse: bool = False,
    lengths: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Selective scan in ``mamba_ssm``'s layout and semantics (real ``A``).

    Args:
        u, delta, z: ``(batch, d_inner, L)``.
        A: ``(d_inner, N)``.
        B, C: ``(batch, N, L)``.
        D, delta_bias: ``(d_inner,)``.
        reverse: scan backwards in time, each sequence within its ``lengths``
            ``(batch,)`` (None: all ``L`` steps); padded steps stay in place,
            after the valid ones (:mod:`dynmultidep.ops.time_order`). The
            output is in the input's time order.

    Returns:
        ``y: (batch, d_inner, L)`` in ``u``'s dtype; with ``return_last_state``
        also the final state ``(batch, d_inner, N)`` in fp32.
    """
    return _scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                 backend, reverse, lengths, channels_last=False)  # fmt: skip


def selective_scan_channels_last(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: str = "auto",
    reverse: bool = False,
    lengths: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """:func:`selective_scan` with sequences as ``u, delta, z: (batch, L, d_inner)``
    and ``B, C: (batch, L, N)``, the layout Mamba blocks compute in."""
    return _scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                 backend, reverse, lengths, channels_last=True)  # fmt: skip


def _reversed(x: Tensor | None, lengths: Tensor | None, channels_last: bool) -> Tensor | None:
    """``x`` reversed in time within ``lengths``, in either layout."""
    if x is None:
        return None
    if channels_last:
        return reverse_within_length(x, lengths)
    return reverse_within_length(x.transpose(1, 2), lengths).transpose(1, 2)


def _scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, backend,
          reverse, lengths, channels_last):  # fmt: skip
    backend = resolve_backend(backend, u.device)
    record("scan", backend)
    dtype = u.dtype
    with torch.autocast(device_type=u.device.type, enabled=False):
        if backend == "fused":
            from dynmultidep.ops.scan.fused import fused_scan

            y, last = fused_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                 channels_last, lengths, reverse)  # fmt: skip
        else:
            if reverse:  # by gathered copies, in and out
                u, delta, B, C, z = (_reversed(x, lengths, channels_last)
                                     for x in (u, delta, B, C, z))  # fmt: skip
            if channels_last:  # the other backends work in mamba_ssm's layout
                u, delta, B, C = (x.transpose(1, 2) for x in (u, delta, B, C))
                z = None if z is None else z.transpose(1, 2)
            if backend == "cuda":  # one dtype for the sequences; A, D and delta_bias fp32
                u, delta, B, C = (x.to(dtype).contiguous() for x in (u, delta, B, C))
                z = None if z is None else z.to(dtype).contiguous()
                scan = _mamba_ssm_scan()
                A, D = A.float(), None if D is None else D.float()
                delta_bias = None if delta_bias is None else delta_bias.float()
            elif backend == "chunked":
                from dynmultidep.ops.scan.chunked import selective_scan_chunked

                scan = selective_scan_chunked
            else:
                scan = selective_scan_reference
            y, last = scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, True)
            if channels_last:
                y = y.transpose(1, 2)
            if reverse:
                y = _reversed(y, lengths, channels_last)
    y = y.to(dtype)
    return (y, last.float()) if return_last_state else y


__all__ = [
    "BACKENDS",
    "fused_available",
    "resolve_backend",
    "selective_scan",
    "selective_scan_channels_last",
    "selective_scan_reference",
]
