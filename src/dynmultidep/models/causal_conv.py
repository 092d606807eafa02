"""The Mamba block's causal depthwise convolution with its bias and SiLU.

``causal_conv1d(x, weight, bias, silu)`` maps ``x: (B, L, d_inner)`` (channels
last, the layout the block computes in) to ``silu(conv(x) + bias)`` of the same
shape, where output step ``t`` sees input steps ``t - K + 1 .. t`` (zeros
before the start): each step depends only on earlier steps, so outputs at
valid steps never see padding after a sequence's end. With ``reverse`` the
convolution runs backwards in time within each sequence's ``lengths``: the
result of reversing each sequence within its length
(:func:`dynmultidep.models.time_order.reverse_within_length`), convolving and
reversing back, which the fused kernels compute by index without the copies.

Backends: ``fused`` (numba kernels, :mod:`.conv_kernel`, fp32, CPU; PyTorch's
depthwise convolution is slow at these shapes on CPU: about 0.3 s forward and
1 s backward at batch 32 x 1000 steps x 1024 channels) and ``reference``
(PyTorch's ``conv1d``, any device, what the fused path is tested against).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dynmultidep.models.ssm import fused_available
from dynmultidep.models.time_order import kernel_lengths, reverse_within_length


def causal_conv_reference(
    x: Tensor, weight: Tensor, bias: Tensor | None, silu: bool, reverse: bool = False,
    lengths: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """``x: (B, L, C)``, ``weight: (C, K)``, ``bias: (C,)`` -> ``(B, L, C)``, in PyTorch."""
    if reverse:
        y = causal_conv_reference(reverse_within_length(x, lengths), weight, bias, silu)
        return reverse_within_length(y, lengths)
    length, taps = x.shape[1], weight.shape[1]
    y = F.conv1d(x.transpose(1, 2), weight[:, None, :], bias, padding=taps - 1,
                 groups=weight.shape[0])[..., :length].transpose(1, 2)  # fmt: skip
    return F.silu(y) if silu else y


def _array(x: Tensor):
    return x.detach().numpy()


class FusedCausalConv(torch.autograd.Function):
    """fp32 CPU tensors; ``x`` may be a strided channels-last view."""

    @staticmethod
    def forward(ctx, x, weight, bias, silu, lengths, reverse):
        from dynmultidep.models.conv_kernel import conv_forward

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
        from dynmultidep.models.conv_kernel import (
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
        backend: ``auto`` (``fused`` for CPU tensors up to fp32 when numba is
            there, else ``reference``), ``fused`` or ``reference``.
    """
    if backend == "auto":  # the kernels compute in fp32: fp64 (e.g. gradcheck) stays exact
        fused = x.device.type == "cpu" and x.dtype != torch.float64 and fused_available()
        backend = "fused" if fused else "reference"
    if backend == "reference":
        return causal_conv_reference(x, weight, bias, silu, reverse, lengths)
    if backend != "fused" or x.device.type != "cpu":
        raise ValueError(f"conv backend {backend!r}: use auto, reference or fused (CPU)")
    dtype = x.dtype
    with torch.autocast(device_type="cpu", enabled=False):
        y = FusedCausalConv.apply(
            x.float(), weight.float(), None if bias is None else bias.float(), silu,
            kernel_lengths(lengths, x.shape[0], x.shape[1]), reverse,
        )  # fmt: skip
    return y.to(dtype)
