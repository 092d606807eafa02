"""Dropout whose mask is a hash of the element index, fused on CPU.

PyTorch's dropout draws a Bernoulli mask (slow on CPU: the masks alone were
6% of a recipe training step in an earlier run of ``python scripts/bench.py
--sections step``, BENCHMARKS.md), multiplies by it and keeps it for the
backward pass. Here, on fp32 CPU tensors, one numba pass
(:mod:`.dropout_kernel`) computes ``x * keep / (1 - p)`` with ``keep`` a hash
of each element's flat index and two keys drawn from PyTorch's generator (so
``torch.manual_seed`` makes it reproducible), and the backward pass applies the
same mask to the gradient, recomputed, never stored. bf16 CPU tensors (under
autocast) have a kernel of their own, which scales in fp32 and rounds once.
Other devices and dtypes use :func:`torch.nn.functional.dropout`.

:func:`keep_mask_reference` is the same mask in plain PyTorch integer ops; the
fused kernel is tested to give it bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmultidep.ops.backends import fused_available

_MASK32 = 0xFFFFFFFF
_MUL = (0x7FEB352D, 0x846CA68B)
KERNEL_DTYPES = (torch.float32, torch.bfloat16)
MAX_ELEMENTS = 1 << 32  # the index hash is over 32 bits


def _mix32(x: Tensor) -> Tensor:
    """The kernel's finaliser on int64 tensors with values in ``[0, 2**32)``."""
    x = x ^ (x >> 16)
    x = (x * _MUL[0]) & _MASK32
    x = x ^ (x >> 15)
    x = (x * _MUL[1]) & _MASK32
    return x ^ (x >> 16)


def threshold(p: float) -> int:
    """Hash values below this are dropped: ``round(p * 2**32)``, for ``0 < p < 1``."""
    return min(round(p * (1 << 32)), _MASK32)


def keep_mask_reference(numel: int, p: float, keys: tuple[int, int]) -> Tensor:
    """``(numel,)`` bool: which elements a dropout with ``keys`` keeps, in plain PyTorch."""
    i = torch.arange(numel, dtype=torch.int64)
    h = _mix32(_mix32((i + keys[0]) & _MASK32) ^ keys[1])
    return h >= threshold(p)


def draw_keys() -> tuple[int, int]:
    """Two 32-bit keys from PyTorch's default CPU generator."""
    key1, key2 = torch.randint(0, 1 << 32, (2,), dtype=torch.int64).tolist()
    return key1, key2


def _bits(x: Tensor) -> np.ndarray:
    """A contiguous bf16 tensor's flat ``uint16`` bit patterns (shared memory)."""
    return x.view(-1).view(torch.int16).numpy().view(np.uint16)


def _masked_scale(x: Tensor, p: float, keys: tuple[int, int]) -> Tensor:
    """The kernel on a contiguous fp32 or bf16 CPU tensor; a new tensor of its dtype."""
    from dynmultidep.ops.dropout_kernel import masked_scale, masked_scale_bf16

    out = torch.empty_like(x)
    scalars = (np.uint32(threshold(p)), np.float32(1.0 / (1.0 - p)), *(np.uint32(k) for k in keys))
    with torch.profiler.record_function("hashed_dropout"):  # named in profiles
        if x.dtype == torch.bfloat16:
            masked_scale_bf16(_bits(x), _bits(out), *scalars)
        else:
            masked_scale(x.view(-1).numpy(), out.view(-1).numpy(), *scalars)
    return out


class _HashedDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, keys):
        ctx.p, ctx.keys = p, keys
        return _masked_scale(x.detach().contiguous(), p, keys)

    @staticmethod
    def backward(ctx, grad):
        grad = grad if grad.dtype in KERNEL_DTYPES else grad.float()
        return _masked_scale(grad.contiguous(), ctx.p, ctx.keys), None, None


def uses_kernel(x: Tensor) -> bool:
    """fp32 and bf16 CPU tensors (bf16 widened to fp32 inside the kernel)."""
    return (x.device.type == "cpu" and x.dtype in KERNEL_DTYPES and x.numel() < MAX_ELEMENTS
            and fused_available())  # fmt: skip


def hashed_dropout(
    x: Tensor, p: float, training: bool = True, keys=None, kernel: bool = True
) -> Tensor:
    """Dropout of ``x`` (any shape) with rate ``p``; identity outside training.

    ``keys`` (two ints in ``[0, 2**32)``) fix the mask; by default they are
    drawn from PyTorch's generator. Without the kernel (not fp32 or bf16 on CPU, or
    ``kernel=False``) this is :func:`torch.nn.functional.dropout`, and ``keys``
    are ignored.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must lie in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    if not (kernel and uses_kernel(x)):
        return F.dropout(x, p, training=True)
    return _HashedDropout.apply(x, p, keys if keys is not None else draw_keys())


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` (same arguments, no state) computed by :func:`hashed_dropout`;
    ``kernel = False`` gives PyTorch's dropout (the training-step bench compares them)."""

    kernel = True

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace:
            raise ValueError("the hashed dropout does not work in place")
        return hashed_dropout(x, self.p, self.training, kernel=self.kernel)
