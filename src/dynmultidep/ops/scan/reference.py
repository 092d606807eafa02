"""The selective scan as a plain sequential loop: the reference every fast path
is tested against.

Symbols follow Mamba (Gu & Dao, 2023): for each batch element, channel ``d``
and state ``n``::

    h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t        (h_{-1} = 0)
    y_t = C_t . h_t + D u_t,   then   y_t <- y_t * silu(z_t)

with ``delta <- softplus(delta + delta_bias)`` when asked. The loop walks
``unbind``-ed steps, so its backward pass is O(L) too (indexing a step of a
materialised tensor would make autograd O(L^2)). It is slow by design.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def prepare_delta(delta: Tensor, delta_bias: Tensor | None, delta_softplus: bool) -> Tensor:
    """fp32 ``softplus(delta + bias)`` (each step optional); ``delta: (batch, d_inner, L)``."""
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    return F.softplus(delta) if delta_softplus else delta


def selective_scan_reference(
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
) -> Tensor | tuple[Tensor, Tensor]:
    """Sequential selective scan, with the semantics of ``mamba_ssm``'s
    ``selective_scan_fn`` for real ``A``.

    Args:
        u, delta: ``(batch, d_inner, L)``.
        A: ``(d_inner, N)``.
        B, C: ``(batch, N, L)``.
        D: ``(d_inner,)`` skip connection.
        z: ``(batch, d_inner, L)`` gate.
        delta_bias: ``(d_inner,)``.

    Returns:
        ``y: (batch, d_inner, L)`` in ``u``'s dtype, and with
        ``return_last_state`` the final state ``(batch, d_inner, N)`` in fp32.
    """
    dtype = u.dtype
    u32 = u.float()
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    A, B, C = A.float(), B.float(), C.float()
    h = u32.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    steps = zip(u32.unbind(2), delta.unbind(2), B.unbind(2), C.unbind(2), strict=True)
    for u_t, delta_t, B_t, C_t in steps:
        h = torch.exp(delta_t[..., None] * A) * h + (delta_t * u_t)[..., None] * B_t[:, None, :]
        ys.append(torch.einsum("bdn,bn->bd", h, C_t))
    y = torch.stack(ys, dim=2)
    if D is not None:
        y = y + u32 * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    y = y.to(dtype)
    return (y, h) if return_last_state else y
