"""DynMultiDep: MT experts per modality, cross-modal sharing of the SSM state
transition, a dynamic modality gate, and a binary classifier.

Data flow for a batch ``audio (B, T, Da)``, ``video (B, T, Dv)``,
``lengths (B,)``::

    h_audio = MTExpert_audio(audio)               (B, T, d_model) step encodings
    h_video = MTExpert_video(video)               (B, T, d_model)
    h_fused = MLP([h_audio, h_video])             (B, T, d_model), if "fused" is an expert
    r_e     = pool_e(h_e)                         (B, P) P = d_model (mean) or 2 d_model (stats)
    w       = gate(features)                      (B, E)  softmax(. / temp), or one-hot
    logit   = classifier(sum_e w_e r_e)           (B,)

The fused expert joins the two streams step by step, before pooling, so it can
see how voice and face move together (which neither unimodal expert can). The
gate reads either the pooled encodings (``gate_input="encoded"``, as the seed
model) or masked mean/std of the raw inputs (``gate_input="raw"``). In the
latter case, with a hard gate in eval mode, only the encoders each sample
needs are run (samples grouped by choice), which is where dynamic fusion saves
compute. With ``expert_loss > 0`` every expert is also trained as a classifier
on its own (the shared classifier on ``r_e``), so an expert the gate seldom
picks still learns, and the gate can route to whichever is right for a vlog.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmultidep.models.dropout import Dropout
from dynmultidep.models.encoder import EncoderConfig
from dynmultidep.models.experts import MODALITIES, ModalityExperts, classifier_head
from dynmultidep.models.gate import ModalityGate, raw_statistics
from dynmultidep.models.output import ModelOutput
from dynmultidep.models.pooling import make_pooling

EXPERTS = ("audio", "video", "fused")
GATE_INPUTS = ("encoded", "raw")


def blank_modalities(audio: Tensor, video: Tensor, rate: float) -> tuple[Tensor, Tensor]:
    """Zero one modality, chosen at random, for a ``rate`` fraction of samples."""
    batch = audio.shape[0]
    dropped = torch.rand(batch, device=audio.device) < rate
    which_audio = torch.rand(batch, device=audio.device) < 0.5
    keep_audio = ~(dropped & which_audio)
    keep_video = ~(dropped & ~which_audio)
    return audio * keep_audio[:, None, None], video * keep_video[:, None, None]


class StepFusion(nn.Module):
    """The fused expert's step features: ``(B, L, d), (B, L, d) -> (B, L, d)``."""

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * d_model, d_model), nn.GELU(), Dropout(dropout))

    def forward(self, audio: Tensor, video: Tensor) -> Tensor:
        return self.net(torch.cat([audio, video], dim=-1))


class DynMultiDep(nn.Module):
    """The DynMultiDep classifier; see the module docstring.

    Args:
        audio_dim, video_dim: feature widths (Da, Dv).
        d_model ... conv_backend: encoder options, see :class:`EncoderConfig`.
        share_ssm: the video expert's Mamba blocks use the audio expert's ``A``.
        temp: gate softmax temperature. hard_gate: one-hot gate (straight-through).
        gumbel: Gumbel noise on gate logits in training.
        gate_input: ``encoded`` (pooled encodings) or ``raw`` (input statistics).
        experts: any of ``audio``, ``video``, ``fused``.
        gate_hidden: hidden width of the gate MLP.
        cost_weight: weight of the compute term ``mean(sum_e w_e cost_e)``.
        modality_dropout: share of training samples with one modality blanked.
        input_norm ... pooling: encoder options (:class:`EncoderConfig`).
        expert_loss: weight of the mean of the experts' own losses in training.
        gate_loss: weight of the routing loss: cross-entropy between the gate's logits
            and, per vlog, the expert whose own loss on it is lowest (with
            ``cost_weight`` times its cost added); needs ``expert_loss > 0``.
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        d_model: int = 256,
        num_layers: int = 1,
        d_state: int = 12,
        d_conv: int = 4,
        expand: int = 4,
        bidirectional: bool = True,
        share_ssm: bool = True,
        d_ffn: int = 1024,
        dropout: float = 0.1,
        activation: str = "gelu",
        causal: bool = False,
        mixers: Sequence[str] | None = None,
        attention_heads: int = 4,
        attention_window: int = 128,
        scan_backend: str = "auto",
        conv_backend: str = "auto",
        temp: float = 1.0,
        hard_gate: bool = True,
        gumbel: bool = False,
        gate_input: str = "encoded",
        experts: Sequence[str] = ("audio", "video"),
        gate_hidden: int = 128,
        cost_weight: float = 0.0,
        modality_dropout: float = 0.0,
        input_norm: bool = True,
        output_norm: bool = True,
        input_deltas: bool = False,
        zero_init_residual: bool = False,
        drop_path: float = 0.0,
        pooling: str = "mean",
        expert_loss: float = 0.0,
        gate_loss: float = 0.0,
    ):
        super().__init__()
        experts = tuple(experts)
        if not experts or sorted(set(experts)) != sorted(experts) or set(experts) - set(EXPERTS):
            raise ValueError(f"experts must be distinct names from {EXPERTS}, got {list(experts)}")
        if gate_input not in GATE_INPUTS:
            raise ValueError(f"gate_input must be one of {GATE_INPUTS}, got {gate_input!r}")
        config = EncoderConfig(
            d_model=d_model, num_layers=num_layers, mixers=mixers, d_state=d_state,
            d_conv=d_conv, expand=expand, bidirectional=bidirectional, causal=causal,
            d_ffn=d_ffn, dropout=dropout, activation=activation, attention_heads=attention_heads,
            attention_window=attention_window, scan_backend=scan_backend,
            conv_backend=conv_backend,
            input_norm=input_norm, output_norm=output_norm, input_deltas=input_deltas,
            zero_init_residual=zero_init_residual, drop_path=drop_path, pooling=pooling,
        )  # fmt: skip
        self.expert_names = experts
        self.d_model = d_model
        self.gate_input = gate_input
        self.cost_weight = cost_weight
        self.modality_dropout = modality_dropout
        if gate_loss > 0 and expert_loss <= 0:
            raise ValueError("gate_loss needs expert_loss > 0: the experts must be classifiers")
        self.expert_loss = expert_loss
        self.gate_loss = gate_loss
        self.encoders = ModalityExperts(audio_dim, video_dim, MODALITIES, share_ssm, config)
        pooled = self.encoders.pooled_dim
        self.fuse = self.fuse_pool = None
        if "fused" in experts:
            self.fuse = StepFusion(d_model, dropout)
            self.fuse_pool = make_pooling(pooling, d_model)
        gate_in = 2 * (audio_dim + video_dim) if gate_input == "raw" else 2 * pooled
        self.gate = ModalityGate(gate_in, len(experts), gate_hidden, temp, hard_gate, gumbel)
        self.classifier = classifier_head(pooled, d_model, dropout)
        costs = {m: float(self.encoders.compute_cost(m)) for m in MODALITIES}
        costs["fused"] = costs["audio"] + costs["video"]
        if self.fuse is not None:
            costs["fused"] += sum(p.numel() for p in self.fuse.parameters())
        cost = torch.tensor([costs[e] for e in experts])
        self.register_buffer("expert_cost", cost / cost.max(), persistent=False)

    def _needs(self, expert: str) -> tuple[str, ...]:
        return MODALITIES if expert == "fused" else (expert,)

    def _representations(self, audio, video, lengths, modalities) -> dict[str, Tensor]:
        """Pooled ``(B, P)`` representations of the experts ``modalities`` allow."""
        inputs = {"audio": audio, "video": video}
        steps = {m: self.encoders.encode(m, inputs[m], lengths) for m in modalities}
        reps = {m: self.encoders.pool(m, steps[m], lengths) for m in modalities}
        if self.fuse is not None and set(MODALITIES) <= set(steps):
            fused = self.fuse(steps["audio"], steps["video"])
            reps["fused"] = self.fuse_pool(fused, lengths)
        return reps

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        if self.training and self.modality_dropout > 0:
            audio, video = blank_modalities(audio, video, self.modality_dropout)
        if self.gate_input == "raw":
            weights, gate_logits = self.gate.route(raw_statistics(audio, video, lengths))
            if self.gate.hard and not self.training:
                mixed = self._chosen_experts_only(audio, video, lengths, weights)
                return self._output(mixed, weights)
            reps = self._representations(audio, video, lengths, self._modalities_used())
        else:
            reps = self._representations(audio, video, lengths, MODALITIES)
            weights, gate_logits = self.gate.route(torch.cat([reps["audio"], reps["video"]], -1))
        stacked = torch.stack([reps[e] for e in self.expert_names], dim=1)  # (B, E, P)
        out = self._output((weights[..., None] * stacked).sum(1), weights)
        if self.training and self.expert_loss > 0:
            expert_logits = self.classifier(stacked).squeeze(-1)  # (B, E)
            out = out._replace(expert_logits=expert_logits, gate_logits=gate_logits)
        return out

    def label_losses(self, out: ModelOutput, labels: Tensor, pos_weight: Tensor | None) -> Tensor:
        """The training losses that need labels: ``expert_loss`` times the experts' mean
        BCE, plus ``gate_loss`` times the routing cross-entropy (see the class docstring)."""
        if out.expert_logits is None:
            return out.logits.new_zeros(())
        experts = out.expert_logits.float()
        targets = labels.float()[:, None].expand_as(experts)
        per_expert = F.binary_cross_entropy_with_logits(
            experts, targets, pos_weight=pos_weight, reduction="none"
        )  # (B, E)
        loss = self.expert_loss * per_expert.mean()
        if self.gate_loss > 0:
            cost = self.cost_weight * self.expert_cost.to(per_expert.dtype)
            best = (per_expert.detach() + cost).argmin(-1)
            loss = loss + self.gate_loss * F.cross_entropy(out.gate_logits.float(), best)
        return loss

    def _modalities_used(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if any(m in self._needs(e) for e in self.expert_names))

    def _chosen_experts_only(self, audio, video, lengths, weights) -> Tensor:
        """Run, for each group of samples with the same choice, only what it needs."""
        choice = weights.argmax(-1)
        mixed = audio.new_zeros(audio.shape[0], self.encoders.pooled_dim)
        for e, expert in enumerate(self.expert_names):
            rows = torch.nonzero(choice == e).flatten()
            if rows.numel() == 0:
                continue
            steps = int(lengths[rows].max())  # the group needs no padding beyond its longest
            reps = self._representations(
                audio[rows, :steps], video[rows, :steps], lengths[rows], self._needs(expert)
            )
            mixed[rows] = (weights[rows, e, None] * reps[expert]).to(mixed.dtype)  # autocast
        return mixed

    def _output(self, mixed: Tensor, weights: Tensor) -> ModelOutput:
        logits = self.classifier(mixed).squeeze(-1)
        aux = self.cost_weight * (weights * self.expert_cost).sum(-1).mean()
        return ModelOutput(logits, weights, aux)
