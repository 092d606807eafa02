"""Mamba blocks: unidirectional and bidirectional (Vision-Mamba "v2"), and the tie
that lets two blocks share one state transition ``A``.

Symbols map to the Mamba paper (Gu & Dao, 2023) and to ``mamba_ssm``'s
``mamba_simple.Mamba``, whose parameter names, shapes and initialisation
:class:`Mamba` keeps, so that a state dict saved there loads here with
``strict=True``:

==============  =====================  ===================================
code            paper                  shape
==============  =====================  ===================================
``d_model``     D                      model width
``d_inner``     E * D                  ``expand * d_model``
``d_state``     N                      SSM state size
``dt_rank``     R                      rank of the delta projection
``A_log``       log(-A)                ``(d_inner, d_state)``
``D``           D (skip)               ``(d_inner,)``
==============  =====================  ===================================

The bidirectional block adds a backward branch with its own ``conv1d_b``,
``x_proj_b``, ``dt_proj_b``, ``A_b_log`` and ``D_b``, sharing ``in_proj`` and
``out_proj``; the two directions are averaged. The backward branch runs
each sequence backwards *within its own length*
(:mod:`dynmultidep.ops.time_order`): padded steps never enter the state of
valid ones, so a sample's output does not depend on what it is batched with.
Only the convolution and the scan depend on time order; both take it as an
argument (the fused CPU kernels read by index, the other backends gather
reversed copies), so every per-step projection runs on the sequence as it is.

Everything computes in the channels-last layout ``(B, L, d_inner)``, which
the fused CPU kernels read directly; ``in_proj`` runs as two products over
its weight's halves, so ``x`` and ``z`` are contiguous without a split.

Cross-modal sharing (``share_ssm``) is :func:`tie_state_transition` applied
block by block to the audio and video experts
(:func:`dynmultidep.models.encoder.share_state_transitions`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmultidep.ops.causal_conv import causal_conv1d
from dynmultidep.ops.scan import selective_scan_channels_last


def _cpu_autocast(x: Tensor) -> bool:
    return x.device.type == "cpu" and torch.is_autocast_enabled("cpu")


class Mamba(nn.Module):
    """Mamba mixer ``(B, L, d_model) -> (B, L, d_model)``.

    Args mirror ``mamba_ssm.modules.mamba_simple.Mamba``; in addition
    ``bidirectional`` adds the backward branch, ``scan_backend`` picks the
    selective-scan implementation (see :mod:`dynmultidep.ops.scan`) and
    ``conv_backend`` the causal convolution's
    (:mod:`dynmultidep.ops.causal_conv`): ``auto`` fuses it with its SiLU on
    CPU and uses ``causal_conv1d`` on CUDA where it imports; with the
    ``reference`` scan, ``auto`` means the reference convolution too (a block
    in plain PyTorch throughout). The weights and biases of ``in_proj``, the
    convolutions and (when bidirectional) ``out_proj`` are used directly (their
    ``forward`` and hooks are not called).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | str = "auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        bidirectional: bool = False,
        scan_backend: str = "auto",
        conv_backend: str = "auto",
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.bidirectional = bidirectional
        self.scan_backend = scan_backend
        self.conv_backend = conv_backend
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias, **factory)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)
        dt = dict(dt_min=dt_min, dt_max=dt_max, dt_init=dt_init, dt_scale=dt_scale,
                  dt_init_floor=dt_init_floor, conv_bias=conv_bias, factory=factory)  # fmt: skip
        self._add_direction("", "A_log", "D", **dt)
        if bidirectional:
            # Vision Mamba leaves the backward branch at PyTorch's default
            # init; here both directions start from Mamba's init.
            self._add_direction("_b", "A_b_log", "D_b", **dt)

    def _add_direction(self, suffix, a_name, d_name, dt_min, dt_max, dt_init, dt_scale,
                       dt_init_floor, conv_bias, factory):  # fmt: skip
        d_inner, device = self.d_inner, factory["device"]
        conv = nn.Conv1d(d_inner, d_inner, kernel_size=self.d_conv, groups=d_inner,
                         padding=self.d_conv - 1, bias=conv_bias, **factory)  # fmt: skip
        x_proj = nn.Linear(d_inner, self.dt_rank + 2 * self.d_state, bias=False, **factory)
        dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True, **factory)
        # dt_proj.weight: variance-preserving init of the low-rank delta projection.
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(dt_proj.weight, std)
        elif dt_init == "random":
            nn.init.uniform_(dt_proj.weight, -std, std)
        else:
            raise ValueError(f"unknown dt_init {dt_init!r}; use random or constant")
        # dt_proj.bias: so that softplus(bias) is log-uniform in [dt_min, dt_max].
        step = torch.exp(
            torch.rand(d_inner, **factory) * (math.log(dt_max) - math.log(dt_min))
            + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        with torch.no_grad():
            dt_proj.bias.copy_(step + torch.log(-torch.expm1(-step)))  # softplus^-1
        dt_proj.bias._no_reinit = True
        # S4D-real init: A[:, n] = -(n + 1). Kept in fp32, never weight-decayed.
        A = torch.arange(1, self.d_state + 1, dtype=torch.float32, device=device)
        A_log = nn.Parameter(torch.log(A).repeat(d_inner, 1))
        A_log._no_weight_decay = True
        D = nn.Parameter(torch.ones(d_inner, device=device))
        D._no_weight_decay = True
        setattr(self, f"conv1d{suffix}", conv)
        setattr(self, f"x_proj{suffix}", x_proj)
        setattr(self, f"dt_proj{suffix}", dt_proj)
        setattr(self, a_name, A_log)
        setattr(self, d_name, D)

    def _direction(
        self, x: Tensor, z: Tensor, suffix: str, lengths: Tensor | None, reverse: bool
    ) -> Tensor:
        """One scan direction: ``x, z: (B, L, d_inner) -> (B, L, d_inner)``, in
        time order or (``reverse``) backwards within ``lengths``."""
        conv = getattr(self, f"conv1d{suffix}")
        x_proj = getattr(self, f"x_proj{suffix}")
        dt_proj = getattr(self, f"dt_proj{suffix}")
        A_log = self.A_b_log if suffix else self.A_log
        D = self.D_b if suffix else self.D
        conv_backend = self.conv_backend
        if conv_backend == "auto" and self.scan_backend == "reference":
            conv_backend = "reference"  # the reference block: plain PyTorch throughout
        order = {"reverse": reverse, "lengths": lengths}
        x = causal_conv1d(x, conv.weight[:, 0, :], conv.bias, silu=True, backend=conv_backend,
                          **order)  # fmt: skip
        dt, B, C = torch.split(x_proj(x), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, dt_proj.weight)  # bias enters the scan as delta_bias
        return selective_scan_channels_last(
            x, delta, -torch.exp(A_log.float()), B, C, D.float(), z,
            delta_bias=dt_proj.bias.float(), delta_softplus=True, backend=self.scan_backend,
            **order,
        )  # fmt: skip

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x: (B, L, d_model)``, ``lengths: (B,)`` valid steps -> ``(B, L, d_model)``.

        Outputs at padded steps are not meaningful; outputs at valid steps do
        not depend on them.
        """
        weight, bias = self.in_proj.weight, self.in_proj.bias
        halves = (slice(None, self.d_inner), slice(self.d_inner, None))
        x, z = (F.linear(x, weight[h], None if bias is None else bias[h]) for h in halves)
        if _cpu_autocast(x):  # the kernels compute in fp32: cast once for both directions
            x, z = x.float(), z.float()
        y = self._direction(x, z, "", lengths, reverse=False)
        if not self.bidirectional:
            return self.out_proj(y)
        # the directions' mean: its 1/2 goes on out_proj's (d_model, d_inner) weight
        y = y + self._direction(x, z, "_b", lengths, reverse=True)
        return F.linear(y, 0.5 * self.out_proj.weight, self.out_proj.bias)


def tie_state_transition(source: Mamba, target: Mamba) -> None:
    """Make ``target`` use ``source``'s ``A_log`` (and ``A_b_log``): one
    parameter, two streams, as the multimodal collaborative SSM does."""
    if source.A_log.shape != target.A_log.shape or source.bidirectional != target.bidirectional:
        raise ValueError("cannot share A between Mamba blocks of different shapes or directions")
    target.A_log = source.A_log
    if source.bidirectional:
        target.A_b_log = source.A_b_log
