"""The selective scan in chunks, in plain PyTorch: a parallel scan for GPUs
without ``mamba_ssm``.

The sequence is cut into chunks of ``T`` steps. Within a chunk the recurrence
has a closed form: with ``a_j = delta_j A`` (<= 0) and ``x_j = delta_j B_j u_j``,

    h_t = sum_{k <= t} exp(sum_{k < j <= t} a_j) x_k  +  exp(sum_{j <= t} a_j) h_start

The exponents are *segment* sums, each the sum of the steps between ``k`` and
``t`` computed directly (a masked cumulative sum over the ``T x T`` pairs of one
chunk): they are never differences of large running sums, so nothing
overflows or cancels, whatever the step sizes, and no cumulative sum runs over
the whole sequence. The chunks' end states are then combined by a short
sequential pass over the ``L / T`` chunks, and each chunk adds its incoming
state's contribution. One state ``n`` at a time, so the ``T x T`` weights take
``batch x d_inner x L x T`` values at most; under autograd each state's
weights are recomputed in the backward pass (activation checkpointing), which
keeps that bound for training too.

Arithmetic is fp32; the semantics are :func:`.reference.selective_scan_reference`'s.
The closed form expects step sizes (``delta >= 0``, as the softplus gives, so
``a_j <= 0``). A raw ``delta`` below zero makes the states grow within a chunk:
the outputs stay as accurate, but the gradients can be off by a few 1e-4 of
their largest value, where the recurrence paths stay near 1e-5
(``tests/test_ssm.py`` draws step sizes for that reason).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from dynmultidep.ops.scan.reference import prepare_delta

# steps per chunk: L / CHUNK sequential combinations; the T x T weights of one state take
# batch x d_inner x L x CHUNK values (at batch 32, d_inner 1024, L 1000: 2 GiB in fp32)
CHUNK = 16


def _one_state(steps: Tensor, inputs: Tensor, a_n: Tensor, B_n: Tensor, C_n: Tensor):
    """One state's within-chunk scan, from the chunk's own inputs.

    Args:
        steps: ``delta (b, d, c, T)``; inputs: ``delta * u (b, d, c, T)``.
        a_n: ``A[:, n] (d,)``; B_n, C_n: ``(b, c, T)``.

    Returns:
        y ``(b, d, c, T)``; end ``(b, d, c)``, the state at each chunk's end;
        total ``(b, d, c)``, each chunk's summed ``a`` (copies, not views, so the
        chunk-sized tensors they come from are freed).
    """
    T = steps.shape[-1]
    a = steps * a_n[:, None, None]  # (b, d, c, T), <= 0
    later = torch.ones(T, T, dtype=torch.bool, device=a.device).tril(-1)  # [j, k]: j > k
    # segment[t, k] = sum of a_j for k < j <= t: a cumulative sum down the j axis
    segment = torch.where(later, a[..., :, None], 0.0).cumsum(-2)
    segment.masked_fill_(later.T, float("-inf"))  # k > t: the future
    weights = torch.exp(segment)  # [t, k] = exp(sum_{k<j<=t} a_j) for k <= t, else 0
    h = torch.einsum("...tk,...k->...t", weights, inputs * B_n[:, None])
    return h * C_n[:, None], h[..., -1].clone(), a.sum(-1)


def _carried_in(steps: Tensor, a_n: Tensor, C_n: Tensor, incoming_n: Tensor) -> Tensor:
    """What the state entering each chunk, ``incoming_n (b, d, c)``, adds to that
    chunk's ``y (b, d, c, T)``: ``C_t exp(sum_{j <= t} a_j) h_in``."""
    running = (steps * a_n[:, None, None]).cumsum(-1)  # within one chunk only
    return torch.exp(running) * C_n[:, None] * incoming_n[..., None]


def selective_scan_chunked(
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
    chunk: int = CHUNK,
) -> Tensor | tuple[Tensor, Tensor]:
    """Chunked selective scan; arguments and results as
    :func:`~.reference.selective_scan_reference` (``u, delta, z: (b, d, L)``,
    ``A: (d, N)``, ``B, C: (b, N, L)``), plus ``chunk``, the steps per chunk."""
    dtype = u.dtype
    batch, channels, length = u.shape
    states = A.shape[1]
    T = max(1, min(chunk, length))
    chunks = -(-length // T)
    pad = chunks * T - length  # padded steps: delta 0, so they change nothing
    delta = F.pad(prepare_delta(delta, delta_bias, delta_softplus), (0, pad))
    u32 = u.float()
    steps = delta.view(batch, channels, chunks, T)
    inputs = (delta * F.pad(u32, (0, pad))).view(batch, channels, chunks, T)
    B = F.pad(B.float(), (0, pad)).view(batch, states, chunks, T)
    C = F.pad(C.float(), (0, pad)).view(batch, states, chunks, T)
    A = A.float()
    recompute = torch.is_grad_enabled() and any(t.requires_grad for t in (steps, inputs, A, B, C))

    def run(fn, *args):
        if recompute:  # no randomness inside: no RNG state to keep
            return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)
        return fn(*args)

    y = u32.new_zeros(batch, channels, chunks, T)
    ends, totals = [], []
    for n in range(states):
        y_n, end, total = run(_one_state, steps, inputs, A[:, n], B[:, n], C[:, n])
        y = y + y_n
        ends.append(end)
        totals.append(total)
    ends = torch.stack(ends, -1)  # (b, d, c, N)
    decays = torch.exp(torch.stack(totals, -1))
    h = u32.new_zeros(batch, channels, states)
    incoming = []
    # the short sequential pass (unbind: indexing a step would make backward O(chunks^2))
    for decay, end in zip(decays.unbind(2), ends.unbind(2), strict=True):
        incoming.append(h)
        h = decay * h + end
    incoming = torch.stack(incoming, 2)  # (b, d, c, N): the state entering each chunk
    for n in range(states):
        y = y + run(_carried_in, steps, A[:, n], C[:, n], incoming[..., n])
    y = y.reshape(batch, channels, chunks * T)[..., :length]
    if D is not None:
        y = y + u32 * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    y = y.to(dtype)
    return (y, h) if return_last_state else y
