"""The DynMM-style gate, and the cheap raw-input statistics it can read.

One class serves every decision the model makes per sample: the modality-level
gate (which expert), the fusion-level gate (which fusion operation) and the
long-short router of an MT expert (how to weigh its two branches).
``weights = softmax(logits / temp)`` over the choices. With ``hard``, the forward
pass uses the one-hot of the largest weight while gradients flow through the
soft weights (straight-through estimator). Optional Gumbel noise in training
makes the choice stochastic, as in DynMM. In eval mode a hard gate lets the model
run only what each sample chose (``skips``); :func:`set_dynamic` turns that off, so
that everything runs and is mixed with the same one-hot weights (the same outputs,
the full cost: what dynamic inference is measured against). ``warming`` makes a
hard gate soft in training only (a warm-up in which every path learns from the
main loss before the choices harden); evaluation keeps the one-hot weights.
``routing_only`` cuts the gate off from the main loss in training: its weights and
its input carry no gradient, so only a routing loss on its logits trains it (the
gate trained on held-out losses, while the paths it weighs learn from the rest).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmultidep.models.masking import masked_mean_std


def raw_statistics(audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
    """Masked mean and std per feature, before any encoder.

    ``audio: (B, L, Da)``, ``video: (B, L, Dv)`` -> ``(B, 2 * (Da + Dv))``.
    """
    return torch.cat([*masked_mean_std(audio, lengths), *masked_mean_std(video, lengths)], dim=-1)


class Gate(nn.Module):
    """``features (B, in_dim) -> weights (B, num_experts)``.

    ``hidden`` is the width of the MLP's hidden layer; 0 makes the gate linear.

    ``temp`` can be set (a callback anneals it); it lives in the ``temperature``
    buffer so checkpoints carry the value training ended with.
    """

    def __init__(
        self,
        in_dim: int,
        num_experts: int,
        hidden: int = 128,
        temp: float = 1.0,
        hard: bool = True,
        gumbel: bool = False,
    ):
        super().__init__()
        if hidden < 0:
            raise ValueError(f"the gate's hidden width must be >= 0, got {hidden}")
        self.net = (
            nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, num_experts))
            if hidden > 0
            else nn.Linear(in_dim, num_experts)  # a linear gate: few parameters for few vlogs
        )
        self.register_buffer("temperature", torch.tensor(float(temp)))
        self.hard = hard
        self.gumbel = gumbel
        self.dynamic = True  # not an option of the model: set_dynamic() for measurements
        self.warming = False  # soft in training, whatever ``hard`` says (a warm-up)
        self.routing_only = False  # in training, learns from a routing loss alone

    def skips(self) -> bool:
        """Whether the paths this gate did not choose may be skipped: hard, in eval."""
        return self.hard and self.dynamic and not self.training

    @property
    def temp(self) -> float:
        return float(self.temperature)

    @temp.setter
    def temp(self, value: float) -> None:
        self.temperature.fill_(float(value))

    def forward(self, features: Tensor) -> Tensor:
        return self.route(features)[0]

    def route(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(weights (B, E), logits (B, E))``: the gate's output and its logits before
        noise and temperature (what a routing loss trains)."""
        if self.routing_only and self.training:
            logits = self.net(features.detach())
            return self._weights(logits.detach()), logits
        logits = self.net(features)
        return self._weights(logits), logits

    def _weights(self, logits: Tensor) -> Tensor:
        if self.gumbel and self.training:
            uniform = torch.rand_like(logits).clamp(1e-9, 1 - 1e-9)
            logits = logits - torch.log(-torch.log(uniform))
        soft = F.softmax(logits / self.temperature, dim=-1)
        if not self.hard or (self.warming and self.training):
            return soft
        hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
        return hard - soft.detach() + soft  # one-hot forward, soft gradient


def set_dynamic(model: nn.Module, dynamic: bool) -> nn.Module:
    """Let every gate in ``model`` skip what it did not choose (``True``, the default)
    or make every path run (``False``); returns ``model``."""
    for module in model.modules():
        if isinstance(module, Gate):
            module.dynamic = dynamic
    return model
