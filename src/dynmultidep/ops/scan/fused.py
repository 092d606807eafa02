"""Autograd wrapper of the fused CPU kernels."""

from __future__ import annotations

import torch
from torch import Tensor

from dynmultidep.ops.time_order import kernel_lengths

CHUNK = 64  # steps per tile; the backward pass recomputes one chunk's states at a time


def _array(x: Tensor):
    return x.detach().numpy()


def _forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, channels_last, lengths,
             reverse, keep_states):  # fmt: skip
    """The forward kernel on :class:`FusedScan`'s inputs: ``out``, ``last (batch, N,
    d_inner)`` and what the backward pass reads, ``(AT, D_, z_, bias, chunk_states,
    lanes)``. Without ``keep_states`` (nothing will need gradients) no chunk states are
    written: ``chunk_states`` has no chunks."""
    import numba

    from dynmultidep.ops.scan import cpu_kernel
    from dynmultidep.ops.scan.forward_kernel import scan_forward

    batch = u.shape[0]
    channels, n_state = A.shape
    lanes = cpu_kernel.job_lanes(batch, channels, numba.get_num_threads(), channels_last)
    length = u.shape[1] if channels_last else u.shape[2]
    AT = A.t().contiguous()
    bias = delta_bias.contiguous() if delta_bias is not None else u.new_zeros(channels)
    D_ = D.contiguous() if D is not None else u.new_zeros(1)
    z_ = z if z is not None else u.new_zeros(1, 1, 1)
    out = torch.empty_like(u)
    n_chunks = -(-length // CHUNK) if keep_states else 0
    chunk_states = u.new_empty(batch, n_chunks, n_state, channels)
    last = u.new_empty(batch, n_state, channels)
    with torch.profiler.record_function("selective_scan_forward"):  # named in profiles
        scan_forward(
            _array(u), _array(delta), _array(AT), _array(B), _array(C), _array(D_),
            _array(z_), _array(bias), D is not None, z is not None, delta_softplus,
            channels_last, lengths.numpy(), reverse, CHUNK, lanes, out.numpy(),
            chunk_states.numpy(), last.numpy(),
        )  # fmt: skip
    return out, last, (AT, D_, z_, bias, chunk_states, lanes)


class FusedScan(torch.autograd.Function):
    """``out, last = FusedScan.apply(u, delta, A, B, C, D, z, delta_bias,
    delta_softplus, channels_last, lengths, reverse)`` on fp32 contiguous CPU tensors.

    With ``channels_last``: ``u, delta, z: (batch, L, d_inner)`` and
    ``B, C: (batch, L, N)``; otherwise mamba_ssm's ``(batch, d_inner, L)`` and
    ``(batch, N, L)``. ``A: (d_inner, N)``, ``D, delta_bias: (d_inner,)``;
    ``D``, ``z`` and ``delta_bias`` may be None. ``last`` is the final state
    ``(batch, d_inner, N)``. The bias and softplus of ``delta`` are applied
    inside the kernels, on the fly. With ``reverse`` the scan runs backwards in
    time within each sequence's ``lengths`` (int64 ``(batch,)``), reading and
    writing every sequence tensor in place by index
    (:mod:`dynmultidep.ops.time_order`).
    """

    @staticmethod
    def forward(
        ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, channels_last, lengths, reverse
    ):  # fmt: skip
        out, last, (AT, D_, z_, bias, chunk_states, lanes) = _forward(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, channels_last, lengths,
            reverse, keep_states=True,
        )  # fmt: skip
        ctx.save_for_backward(u, delta, AT, B, C, D_, z_, bias, chunk_states, lengths)
        ctx.flags = (D is not None, z is not None, delta_bias is not None, delta_softplus)
        ctx.order = (channels_last, reverse)
        ctx.lanes = lanes
        ctx.set_materialize_grads(False)
        return out, last.transpose(1, 2)

    @staticmethod
    def backward(ctx, dout, dlast):
        from dynmultidep.ops.scan.backward_kernel import scan_backward

        u, delta, AT, B, C, D_, z_, bias, chunk_states, lengths = ctx.saved_tensors
        has_D, has_z, has_bias, softplus = ctx.flags
        channels_last, reverse = ctx.order
        batch = u.shape[0]
        n_state, channels = AT.shape
        length = u.shape[1] if channels_last else u.shape[2]
        lanes = ctx.lanes
        blocks = -(-channels // lanes)
        dout = torch.zeros_like(u) if dout is None else dout.float().contiguous()
        has_dlast = dlast is not None
        dlast_ = dlast.float().transpose(1, 2).contiguous() if has_dlast else u.new_zeros(1, 1, 1)
        du, ddelta = torch.empty_like(u), torch.empty_like(u)
        dz = torch.empty_like(u) if has_z else u.new_zeros(1, 1, 1)
        dA_part = u.new_empty(batch, n_state, channels)
        # B and C come from the same walk: both gradients, or neither (no partial sums)
        bc_grads = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]
        bc_shape = (batch, blocks, length, n_state) if bc_grads else (1, 1, 1, 1)
        dB_part, dC_part = u.new_empty(bc_shape), u.new_empty(bc_shape)
        dD_part = u.new_empty(batch, channels)
        dbias_part = u.new_empty(batch, channels)
        with torch.profiler.record_function("selective_scan_backward"):
            scan_backward(
                _array(u), _array(delta), _array(AT), _array(B), _array(C), _array(D_),
                _array(z_), _array(bias), has_D, has_z, softplus, channels_last, lengths.numpy(),
                reverse, CHUNK, lanes, _array(chunk_states), _array(dout), _array(dlast_),
                has_dlast, du.numpy(), ddelta.numpy(), dz.numpy(), dA_part.numpy(), bc_grads,
                dB_part.numpy(), dC_part.numpy(), dD_part.numpy(), dbias_part.numpy(),
            )  # fmt: skip
        dB = dC = None
        if bc_grads:
            dB, dC = dB_part.sum(1), dC_part.sum(1)  # (batch, L, N)
            if not channels_last:
                dB, dC = dB.transpose(1, 2), dC.transpose(1, 2)
        return (
            du,
            ddelta,
            dA_part.sum(0).t(),
            dB,
            dC,
            dD_part.sum(0) if has_D else None,
            dz if has_z else None,
            dbias_part.sum(0) if has_bias else None,
            None,
            None,
            None,
            None,
        )


def fused_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    channels_last: bool = False,
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Fused CPU scan; returns ``out`` (fp32, ``u``'s layout) and the last
    state ``(batch, d_inner, N)``. Inputs are cast to fp32 and made contiguous.
    ``reverse`` scans backwards in time within ``lengths`` (None: full length)."""
    u, delta, B, C = (x.float().contiguous() for x in (u, delta, B, C))
    z = None if z is None else z.float().contiguous()
    D = None if D is None else D.float()
    delta_bias = None if delta_bias is None else delta_bias.float()
    length = u.shape[1] if channels_last else u.shape[2]
    lengths = kernel_lengths(lengths, u.shape[0], length)
    args = (u, delta, A.float(), B, C, D, z, delta_bias, delta_softplus, channels_last,
            lengths, reverse)  # fmt: skip
    if torch.is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in args):
        return FusedScan.apply(*args)
    out, last, _ = _forward(*args, keep_states=False)  # inference: no chunk states
    return out, last.transpose(1, 2)
