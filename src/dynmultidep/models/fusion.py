"""The fused expert: fusion operations of different cost, and DynMM's fusion-level gate.

Each operation turns the two modalities' step encodings ``(B, L, d)`` (and their
pooled representations ``(B, P)``) into one pooled representation ``(B, P)``:

* ``none``: no step-level fusion, the mean of the pooled unimodal representations
  (nothing is computed per step);
* ``mlp``: an MLP on the concatenated step encodings, then pooling (the step-level
  fusion of the project's default model);
* ``attention``: each modality's steps attend to the other's within a local window
  (:class:`LocalCrossAttention`), then the ``mlp`` fusion of the attended steps.

With more than one operation a fusion-level gate (:class:`Gate`, the modality gate's
class) weighs them per sample. With a hard gate in eval, each sample runs only the
operation it chose. In training every operation runs, and :class:`Fused` hands the
model each one's representation, so that each can be trained on its own loss (the
model's ``expert_loss``) and not only the one the gate happens to pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dynmultidep.models.attention import LocalCrossAttention
from dynmultidep.models.encoder import EncoderConfig
from dynmultidep.models.gate import Gate
from dynmultidep.models.pooling import make_pooling
from dynmultidep.ops.dropout import Dropout

FUSION_OPS = ("none", "mlp", "attention")  # from the cheapest to the costliest


def step_mlp(d_model: int, dropout: float) -> nn.Sequential:
    """``(B, L, 2 d) -> (B, L, d)``: Linear, GELU, dropout."""
    return nn.Sequential(nn.Linear(2 * d_model, d_model), nn.GELU(), Dropout(dropout))


class PooledMean(nn.Module):
    """``none``: ``(pooled_audio + pooled_video) / 2``; no step-level fusion."""

    def __init__(self, config: EncoderConfig):
        super().__init__()

    def forward(self, audio, video, pooled_audio, pooled_video, lengths) -> Tensor:
        return (pooled_audio + pooled_video) / 2


class StepFusion(nn.Module):
    """``mlp``: ``MLP([h_audio, h_video])`` step by step, pooled over valid steps."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.net = step_mlp(config.d_model, config.dropout)
        self.pool = make_pooling(config.pooling, config.d_model)

    def forward(self, audio, video, pooled_audio, pooled_video, lengths) -> Tensor:
        return self.pool(self.net(torch.cat([audio, video], dim=-1)), lengths)


class CrossModalFusion(nn.Module):
    """``attention``: ``a' = h_a + attn(h_a -> h_v)``, ``v' = h_v + attn(h_v -> h_a)``
    (pre-norm, local window), then ``MLP([a', v'])`` step by step, pooled."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        d = config.d_model
        self.norm_audio, self.norm_video = nn.LayerNorm(d), nn.LayerNorm(d)
        options = dict(
            num_heads=config.attention_heads, window=config.attention_window,
            causal=config.causal, dropout=config.dropout,
        )  # fmt: skip
        self.audio_to_video = LocalCrossAttention(d, **options)
        self.video_to_audio = LocalCrossAttention(d, **options)
        self.net = step_mlp(d, config.dropout)
        self.pool = make_pooling(config.pooling, d)

    def forward(self, audio, video, pooled_audio, pooled_video, lengths) -> Tensor:
        a, v = self.norm_audio(audio), self.norm_video(video)
        audio = audio + self.audio_to_video(a, v, lengths)
        video = video + self.video_to_audio(v, a, lengths)
        return self.pool(self.net(torch.cat([audio, video], dim=-1)), lengths)


OP_CLASSES = {"none": PooledMean, "mlp": StepFusion, "attention": CrossModalFusion}


class Fused(NamedTuple):
    """What the fused expert returns for a batch of ``B`` samples."""

    rep: Tensor  # (B, P) the fused representation
    weights: Tensor | None = None  # (B, K) the fusion gate's weights (None without it)
    logits: Tensor | None = None  # (B, K) the gate's logits before noise and temperature
    op_reps: Tensor | None = None  # (B, K, P) every operation's representation, when all ran


class FusedExpert(nn.Module):
    """The fused expert: ``(h_a, h_v: (B, L, d), r_a, r_v: (B, P), lengths (B,),
    features (B, F)) ->`` :class:`Fused`.

    Args:
        ops: fusion operations, names from :data:`FUSION_OPS`.
        config: the experts' options (width, pooling, attention heads and window).
        gate: a fusion-level gate over ``ops`` (needs two or more); without it, one op.
        gate_in, gate_hidden, temp, hard, gumbel: the gate's options (see :class:`Gate`);
            it reads ``features`` (what the modality gate reads).
    """

    def __init__(
        self,
        ops: Sequence[str],
        config: EncoderConfig,
        gate: bool = False,
        gate_in: int = 0,
        gate_hidden: int = 128,
        temp: float = 1.0,
        hard: bool = True,
        gumbel: bool = False,
    ):
        super().__init__()
        ops = tuple(ops)
        unknown = sorted(set(ops) - set(FUSION_OPS))
        if unknown or not ops or len(set(ops)) != len(ops):
            raise ValueError(
                f"fusion_ops must be distinct names from {FUSION_OPS}, got {list(ops)}"
            )
        if gate and len(ops) < 2:
            raise ValueError(f"fusion_gate needs two or more fusion_ops, got {list(ops)}")
        if not gate and len(ops) != 1:
            raise ValueError(
                f"without fusion_gate, give exactly one of fusion_ops, got {list(ops)}"
            )
        self.op_names = ops
        self.ops = nn.ModuleDict({name: OP_CLASSES[name](config) for name in ops})
        self.gate = Gate(gate_in, len(ops), gate_hidden, temp, hard, gumbel) if gate else None

    def op_costs(self) -> Tensor:
        """``(K,)`` parameters each operation applies (a proxy for its compute; 0 for none)."""
        return torch.tensor(
            [float(sum(p.numel() for p in op.parameters())) for op in self.ops.values()]
        )

    def forward(
        self,
        audio: Tensor,
        video: Tensor,
        pooled_audio: Tensor,
        pooled_video: Tensor,
        lengths: Tensor,
        features: Tensor,
    ) -> Fused:
        args = (audio, video, pooled_audio, pooled_video, lengths)
        if self.gate is None:
            return Fused(self.ops[self.op_names[0]](*args))
        weights, logits = self.gate.route(features)  # (B, K) each
        if self.gate.skips():
            return Fused(self._chosen_ops_only(args, weights), weights, logits)
        stacked = torch.stack([op(*args) for op in self.ops.values()], dim=1)  # (B, K, P)
        return Fused((weights[..., None] * stacked).sum(1), weights, logits, stacked)

    def _chosen_ops_only(self, args: tuple[Tensor, ...], weights: Tensor) -> Tensor:
        """Each sample runs the operation its hard gate chose, and nothing else."""
        audio, video, pooled_audio, pooled_video, lengths = args
        choice = weights.argmax(-1)
        out = pooled_audio.new_zeros(pooled_audio.shape)
        for k, op in enumerate(self.ops.values()):
            rows = torch.nonzero(choice == k).flatten()
            if rows.numel() == 0:
                continue
            steps = int(lengths[rows].max())  # the group needs no padding beyond its longest
            rep = op(audio[rows, :steps], video[rows, :steps], pooled_audio[rows],
                     pooled_video[rows], lengths[rows])  # fmt: skip
            out[rows] = (weights[rows, k, None] * rep).to(out.dtype)
        return out
