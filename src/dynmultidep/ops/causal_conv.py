"""The Mamba block's causal depthwise convolution with its bias and SiLU.

``causal_conv1d(x, weight, bias, silu)`` maps ``x: (B, L, d_inner)`` (channels
last, the layout the block computes in) to ``silu(conv(x) + bias)`` of the same
shape, where output step ``t`` sees input steps ``t - K + 1 .. t`` (zeros
before the start): each step depends only on earlier steps, so outputs at
valid steps never see padding after a sequence's end. With ``reverse`` the
convolution runs backwards in time within each sequence's ``lengths``: the
result of reversing each sequence within its length
(:func:`dynmultidep.ops.time_order.reverse_within_length`), convolving and
reversing back, which the fused kernels compute by index without the copies.

Backends: ``fused`` (numba kernels, :mod:`.conv_kernel`, fp32, CPU; PyTorch's
depthwise convolution is slow at these shapes on CPU: about 0.3 s forward and
1 s backward at batch 32 x 1000 steps x 1024 channels), ``cuda``
(``causal_conv1d_fn`` of the optional ``causal_conv1d`` package, CUDA tensors;
the reversed direction by gathered copies, as ``reference`` does) and
``reference`` (PyTorch's ``conv1d``, any device, what the others are tested
against). ``auto`` picks ``fused`` on CPU, ``cuda`` on CUDA when the package
imports (else ``reference``, with one warning per process:
:mod:`dynmultidep.ops.backends`). Each call records the backend it ran.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dynmultidep.ops.backends import fused_available, on_kernel_device, optional_kernel, record
from dynmultidep.ops.time_order import kernel_lengths, reverse_within_length

CONV_BACKENDS = ("auto", "reference", "fused", "cuda")


def _within_reversed(conv, x: Tensor, lengths: Tensor | None, *args) -> Tensor:
    """``conv`` run backwards in time within ``lengths``, by gathered copies in and out."""
    return reverse_within_length(conv(reverse_within_length(x, lengths), *args), lengths)


def causal_conv_reference(
    x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool, reverse: bool = False,
    lengths: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """``x: (B, L, C)``, ``weight: (C, K)``, ``bias: (C,)`` -> ``(B, L, C)``, in PyTorch."""
    if reverse:
        return _within_reversed(causal_conv_reference, x, lengths, weight, bias, silu)
    length, taps = x.shape[1], weight.shape[1]
    y = F.conv1d(x.transpose(1, 2), weight[:, None, :], bias, padding=taps - 1,
                 groups=weight.shape[0])[..., :length].transpose(1, 2)  # fmt: skip
    return F.silu(y) if silu else y


def causal_conv_cuda(
    x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool, reverse: bool = False,
    lengths: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """``causal_conv1d_fn`` on ``x: (B, L, C)`` (CUDA), passed as the channels-last
    view ``(B, C, L)`` it reads without a copy (its channels-last kernel needs ``C``
    and the strides in multiples of 8: otherwise a contiguous copy); weight and bias
    in ``x``'s dtype (autocast does not reach the kernel)."""
    if reverse:
        return _within_reversed(causal_conv_cuda, x, lengths, weight, bias, silu)
    conv = optional_kernel("causal_conv1d")
    x = x.transpose(1, 2)
    if x.stride(1) != 1 or x.shape[1] % 8 or x.stride(0) % 8 or x.stride(2) % 8:
        x = x.contiguous()
    y = conv(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype),
             activation="silu" if silu else None)  # fmt: skip
    return y.transpose(1, 2)


def resolve_conv_backend(backend: str, x: Tensor) -> str:
    """The concrete backend ``backend`` means for ``x``; see the module docstring."""
    if backend not in CONV_BACKENDS:
        raise ValueError(f"unknown conv backend {backend!r}; use one of {', '.join(CONV_BACKENDS)}")
    on_gpu = on_kernel_device(x.device)
    if backend == "auto":  # the kernels compute in fp32: fp64 (e.g. gradcheck) stays exact
        if x.dtype == torch.float64:
            return "reference"
        if on_gpu:
            return "cuda" if optional_kernel("causal_conv1d") is not None else "reference"
        return "fused" if x.device.type == "cpu" and fused_available() else "reference"
    if backend == "fused" and (x.device.type != "cpu" or not fused_available()):
        raise ValueError("conv backend 'fused' needs CPU tensors and the numba package")
    if backend == "cuda" and (not on_gpu or optional_kernel("causal_conv1d") is None):
        raise ValueError("conv backend 'cuda' needs CUDA tensors and the causal-conv1d package")
    return backend


def _array(x: Tensor):
    return x.detach().numpy()


class FusedCausalConv(torch.autograd.Function):
    """fp32 CPU tensors; ``x`` may be a strided channels-last view."""

    @staticmethod
    def forward(ctx, x, weight, bias, silu, lengths, reverse):
        from dynmultidep.ops.conv_kernel import conv_forward

        wT = weight.t().contiguous()
        bias_ = bias.contiguous() if bias is not None else x.new_zeros(weight.shape[0])
        out = x.new_empty(x.shape)
        with torch.profiler.record_function("causal_conv_forward"):  # named in profiles
            conv_forward(_array(x), _array(wT), _array(bias_), bias is not None, silu,
                         lengths.numpy(), reverse, out.numpy())  # fmt: skip
        ctx.save_for_backward(x, wT, bias_, lengths)
        ctx.flags = (bias is not None, silu, reverse)
        return out

    @staticmethod
    def backward(ctx, dout):
        from dynmultidep.ops.conv_kernel import (
            TIME_BLOCK,
            conv_backward_input,
            conv_backward_pre,
        )

        x, wT, bias_, lengths = ctx.saved_tensors
        has_bias, silu, reverse = ctx.flags
        batch, length, channels = x.shape
        jobs = batch * -(-length // TIME_BLOCK)
        dout = dout.float().contiguous()
        dpre = torch.empty_like(dout)
        dw_part = x.new_empty(jobs, wT.shape[0], channels)
        dbias_part = x.new_empty(jobs, channels)
        dx = torch.empty_like(dout) if ctx.needs_input_grad[0] else None
        with torch.profiler.record_function("causal_conv_backward"):
            conv_backward_pre(
                _array(x), _array(wT), _array(bias_), has_bias, silu, lengths.numpy(), reverse,
                _array(dout), dpre.numpy(), dw_part.numpy(), dbias_part.numpy(),
            )  # fmt: skip
            if dx is not None:
                conv_backward_input(_array(wT), lengths.numpy(), reverse, dpre.numpy(), dx.numpy())
        dweight = dw_part.sum(0).t()
        return dx, dweight, dbias_part.sum(0) if has_bias else None, None, None, None


def causal_conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, silu: bool = True,
    backend: str = "auto", reverse: bool = False, lengths: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """Causal depthwise convolution (+ bias, + SiLU); see the module docstring.

    Args:
        x: ``(B, L, C)``; weight: ``(C, K)``; bias: ``(C,)`` or None.
        reverse: causal backwards in time within ``lengths: (B,)`` (None: ``L``).
        backend: one of :data:`CONV_BACKENDS` (module docstring).
    """
    backend = resolve_conv_backend(backend, x)
    record("conv", backend)
    if backend == "reference":
        return causal_conv_reference(x, weight, bias, silu, reverse, lengths)
    if backend == "cuda":
        return causal_conv_cuda(x, weight, bias, silu, reverse, lengths)
    dtype = x.dtype
    with torch.autocast(device_type="cpu", enabled=False):
        y = FusedCausalConv.apply(
            x.float(), weight.float(), None if bias is None else bias.float(), silu,
            kernel_lengths(lengths, x.shape[0], x.shape[1]), reverse,
        )  # fmt: skip
    return y.to(dtype)
