"""DynMultiDep: MT experts per modality, cross-modal sharing of the SSM state
transition, DynMM's dynamic gates (modality level, and fusion level inside the
fused expert), and a binary classifier.

Data flow for a batch ``audio (B, T, Da)``, ``video (B, T, Dv)``,
``lengths (B,)``::

    h_audio = MTExpert_audio(audio)               (B, T, d_model) step encodings
    h_video = MTExpert_video(video)               (B, T, d_model)
    r_e     = pool_e(h_e)                         (B, P) P = d_model (mean) or 2 d_model (stats)
    r_stats = Linear(functionals(audio, video))   (B, P)  if "stats" is an expert
    f       = fusion_gate(features)               (B, K)  over fusion_ops, if fusion_gate
    r_fused = sum_k f_k op_k(h_a, h_v, r_a, r_v)  (B, P)  if "fused" is an expert
    w       = gate(features)                      (B, E)  softmax(. / temp), or one-hot
    logit   = classifier(sum_e w_e r_e)           (B,)

The fused expert joins the two streams step by step, before pooling, so it can
see how voice and face move together (which neither unimodal expert can); its
operations (``models.fusion``) range from none to cross-modal attention. The
gates read either the pooled encodings (``gate_input="encoded"``, as the seed
model) or masked mean/std of the raw inputs (``gate_input="raw"``). In the
latter case, with a hard gate in eval mode, only the encoders each sample
needs are run (samples grouped by choice), which is where dynamic fusion saves
compute. With ``expert_loss > 0`` every expert is also trained as a classifier
on its own (the shared classifier on ``r_e``), so an expert the gate seldom
picks still learns, and the gate can route to whichever is right for a vlog;
with a fusion-level gate, the fused expert's own loss is the mean of its
operations' own losses, so that every operation learns whichever the gate picks.
The statistics expert (``models.statistics``) reads per-channel functionals of
the raw inputs and runs no encoder: the cheap path for vlogs whose cue is in how
much and how fast their channels vary.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dynmultidep.models.encoder import EncoderConfig
from dynmultidep.models.experts import MODALITIES, ModalityExperts, classifier_head
from dynmultidep.models.fusion import Fused, FusedExpert
from dynmultidep.models.gate import Gate, raw_statistics
from dynmultidep.models.output import ModelOutput
from dynmultidep.models.statistics import StatisticsExpert

EXPERTS = ("audio", "video", "fused", "stats")
GATE_INPUTS = ("encoded", "raw")


def blank_modalities(audio: Tensor, video: Tensor, rate: float) -> tuple[Tensor, Tensor]:
    """Zero one modality, chosen at random, for a ``rate`` fraction of samples."""
    batch = audio.shape[0]
    dropped = torch.rand(batch, device=audio.device) < rate
    which_audio = torch.rand(batch, device=audio.device) < 0.5
    keep_audio = ~(dropped & which_audio)
    keep_video = ~(dropped & ~which_audio)
    return audio * keep_audio[:, None, None], video * keep_video[:, None, None]


def own_losses(logits: Tensor, labels: Tensor, pos_weight: Tensor | None) -> Tensor:
    """Each path's own BCE per sample: ``logits (B, K), labels (B,) -> (B, K)``."""
    logits = logits.float()
    targets = labels.float()[:, None].expand_as(logits)
    return F.binary_cross_entropy_with_logits(
        logits, targets, pos_weight=pos_weight, reduction="none"
    )


def routing_loss(gate_logits: Tensor, path_losses: Tensor) -> Tensor:
    """Cross-entropy of a gate's logits ``(B, K)`` against, per sample, the path whose
    loss ``(B, K)`` (cost included) is lowest."""
    return F.cross_entropy(gate_logits.float(), path_losses.argmin(-1))


class DynMultiDep(nn.Module):
    """The DynMultiDep classifier; see the module docstring.

    Args:
        audio_dim, video_dim: feature widths (Da, Dv).
        share_ssm: the video expert's Mamba blocks use the audio expert's ``A``.
        temp: gates' softmax temperature. hard_gate: one-hot gates (straight-through).
        gumbel: Gumbel noise on gate logits in training.
        gate_input: ``encoded`` (pooled encodings) or ``raw`` (input statistics).
        experts: any of ``audio``, ``video``, ``fused``, ``stats`` (the statistics
            expert: functionals of both raw inputs, projected linearly).
        fusion_ops: the fused expert's operations (``models.fusion.FUSION_OPS``).
        fusion_gate: a fusion-level gate chooses among ``fusion_ops`` per sample (it
            reads what the modality gate reads, with the same temperature, hardness
            and noise); without it, ``fusion_ops`` names one operation.
        gate_hidden: hidden width of the gate MLPs.
        soft_epochs: for this many first epochs of training, hard gates (both levels)
            train soft, so that every expert and fusion operation learns from the
            main loss before the choices harden (DynMM trains its branches before its
            gate); evaluation always uses one-hot weights. See :meth:`start_epoch`.
        cost_weight: weight of the compute term ``mean(cost)``, the expected cost of
            each sample's path through both gates (see :meth:`path_cost`).
        modality_dropout: share of training samples with one modality blanked.
        expert_loss: weight of the mean of the experts' own losses in training (with
            a fusion gate, the fused expert's is the mean of its operations' losses).
        gate_loss: weight of the routing loss: cross-entropy between the gate's logits
            and, per vlog, the expert whose own loss on it is lowest (with
            ``cost_weight`` times its cost added; the fused expert's is its best
            operation's), and the same for the fusion gate over its operations;
            needs ``expert_loss > 0``.
        **encoder: the experts' options, :class:`EncoderConfig` (``d_model``,
            ``mtem``, ``router``, ``attention_window`` ...).
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        share_ssm: bool = True,
        temp: float = 1.0,
        hard_gate: bool = True,
        gumbel: bool = False,
        gate_input: str = "encoded",
        experts: Sequence[str] = ("audio", "video"),
        fusion_ops: Sequence[str] = ("mlp",),
        fusion_gate: bool = False,
        gate_hidden: int = 128,
        soft_epochs: int = 0,
        cost_weight: float = 0.0,
        modality_dropout: float = 0.0,
        expert_loss: float = 0.0,
        gate_loss: float = 0.0,
        **encoder,
    ):
        super().__init__()
        experts = tuple(experts)
        if not experts or sorted(set(experts)) != sorted(experts) or set(experts) - set(EXPERTS):
            raise ValueError(f"experts must be distinct names from {EXPERTS}, got {list(experts)}")
        if gate_input not in GATE_INPUTS:
            raise ValueError(f"gate_input must be one of {GATE_INPUTS}, got {gate_input!r}")
        if fusion_gate and "fused" not in experts:
            raise ValueError("fusion_gate needs the fused expert: add fused to experts")
        if soft_epochs < 0:
            raise ValueError(f"soft_epochs must be >= 0, got {soft_epochs}")
        config = EncoderConfig(**encoder)
        self.expert_names = experts
        self.d_model = config.d_model
        self.gate_input = gate_input
        self.cost_weight = cost_weight
        self.modality_dropout = modality_dropout
        if gate_loss > 0 and expert_loss <= 0:
            raise ValueError("gate_loss needs expert_loss > 0: the experts must be classifiers")
        self.expert_loss = expert_loss
        self.gate_loss = gate_loss
        self.encoders = ModalityExperts(audio_dim, video_dim, MODALITIES, share_ssm, config)
        pooled = self.encoders.pooled_dim
        gate_in = 2 * (audio_dim + video_dim) if gate_input == "raw" else 2 * pooled
        self.fusion = None
        if "fused" in experts:
            self.fusion = FusedExpert(
                fusion_ops, config, fusion_gate, gate_in, gate_hidden, temp, hard_gate, gumbel
            )
        self.statistics = None
        if "stats" in experts:
            self.statistics = StatisticsExpert(audio_dim, video_dim, pooled, dropout=config.dropout)
        self.gate = Gate(gate_in, len(experts), gate_hidden, temp, hard_gate, gumbel)
        self.soft_epochs = soft_epochs
        self.classifier = classifier_head(pooled, config.d_model, config.dropout)
        self._register_costs()

    def start_epoch(self, epoch: int) -> dict[str, float]:
        """Called by the training task at the start of each training epoch (from 0):
        the gates train soft while ``epoch < soft_epochs``. Returns what to log
        (``gate/soft_warmup``: 1 in the warm-up, 0 after; nothing without one)."""
        warming = epoch < self.soft_epochs
        for gate in (self.gate, self.fusion.gate if self.fusion is not None else None):
            if gate is not None:
                gate.warming = warming
        return {"gate/soft_warmup": float(warming)} if self.soft_epochs > 0 else {}

    def _register_costs(self) -> None:
        """Buffers of costs relative to the costliest path (all three of type float):
        ``expert_cost (E,)``, the fused expert at its costliest operation, and
        ``fusion_cost (K,)``, each operation's own cost."""
        costs = {m: float(self.encoders.compute_cost(m)) for m in MODALITIES}
        costs["fused"] = costs["audio"] + costs["video"]
        ops = self.fusion.op_costs() if self.fusion is not None else torch.zeros(1)
        costs["fused"] += float(ops.max())
        if self.statistics is not None:
            costs["stats"] = float(self.statistics.compute_cost())
        cost = torch.tensor([costs[e] for e in self.expert_names])
        self.register_buffer("expert_cost", cost / cost.max(), persistent=False)
        self.register_buffer("fusion_cost", ops / cost.max(), persistent=False)

    def path_cost(self, weights: Tensor, fusion_weights: Tensor | None) -> Tensor:
        """Expected cost of each sample's path: ``sum_e w_e cost_e``, with the fused
        expert's costliest operation replaced by ``sum_k f_k cost_k`` -> ``(B,)``."""
        cost = (weights * self.expert_cost).sum(-1)
        if fusion_weights is not None:
            fused = weights[:, self.expert_names.index("fused")]
            chosen = (fusion_weights * self.fusion_cost).sum(-1) - self.fusion_cost.max()
            cost = cost + fused * chosen
        return cost

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints written before the fusion operations had their own module kept
        the step fusion as ``fuse`` and its pooling as ``fuse_pool``."""
        renames = {"fuse.": "fusion.ops.mlp.", "fuse_pool.": "fusion.ops.mlp.pool."}
        for key in [k for k in state_dict if k.startswith(prefix)]:
            for old, new in renames.items():
                if key.startswith(prefix + old):
                    state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _needs(self, expert: str) -> tuple[str, ...]:
        """The modality encoders ``expert`` runs."""
        return {"fused": MODALITIES, "stats": ()}.get(expert, (expert,))

    def _representations(
        self, audio, video, lengths, modalities, features=None, stats=False
    ) -> tuple[dict[str, Tensor], Fused | None]:
        """Pooled ``(B, P)`` representations of the experts ``modalities`` allow (and of
        the statistics expert with ``stats``), and the fused expert's output (None
        without it, or when ``modalities`` lack one). ``features``: the raw statistics
        the gates read (None: the pooled encodings)."""
        inputs = {"audio": audio, "video": video}
        steps = {m: self.encoders.encode(m, inputs[m], lengths) for m in modalities}
        reps = {m: self.encoders.pool(m, steps[m], lengths) for m in modalities}
        fused = None
        if self.fusion is not None and set(MODALITIES) <= set(steps):
            if features is None:
                features = torch.cat([reps["audio"], reps["video"]], -1)
            fused = self.fusion(
                steps["audio"], steps["video"], reps["audio"], reps["video"], lengths, features
            )
            reps["fused"] = fused.rep
        if stats:
            reps["stats"] = self.statistics(audio, video, lengths)
        return reps, fused

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        if self.training and self.modality_dropout > 0:
            audio, video = blank_modalities(audio, video, self.modality_dropout)
        if self.gate_input == "raw":
            features = raw_statistics(audio, video, lengths)
            weights, gate_logits = self.gate.route(features)
            if self.gate.skips():
                mixed, fusion_weights = self._chosen_experts_only(
                    audio, video, lengths, weights, features
                )
                return self._output(mixed, weights, fusion_weights)
            reps, fused = self._representations(
                audio, video, lengths, self._modalities_used(), features, self._stats
            )
        else:
            reps, fused = self._representations(
                audio, video, lengths, MODALITIES, None, self._stats
            )
            weights, gate_logits = self.gate.route(torch.cat([reps["audio"], reps["video"]], -1))
        stacked = torch.stack([reps[e] for e in self.expert_names], dim=1)  # (B, E, P)
        fusion_weights = None if fused is None else fused.weights
        out = self._output((weights[..., None] * stacked).sum(1), weights, fusion_weights)
        if self.training and self.expert_loss > 0:
            out = out._replace(
                expert_logits=self.classifier(stacked).squeeze(-1),  # (B, E)
                gate_logits=gate_logits,
            )
            if fused is not None and fused.op_reps is not None:
                out = out._replace(
                    op_logits=self.classifier(fused.op_reps).squeeze(-1),  # (B, K)
                    fusion_gate_logits=fused.logits,
                )
        return out

    def label_losses(self, out: ModelOutput, labels: Tensor, pos_weight: Tensor | None) -> Tensor:
        """The training losses that need labels: ``expert_loss`` times the experts' mean
        BCE, plus ``gate_loss`` times the routing cross-entropy (see the class docstring)."""
        if out.expert_logits is None:
            return out.logits.new_zeros(())
        per_expert = own_losses(out.expert_logits, labels, pos_weight)  # (B, E)
        routing = per_expert.detach()
        if out.op_logits is not None:  # the fused expert: its operations, each on its own
            per_op = own_losses(out.op_logits, labels, pos_weight)  # (B, K)
            fused = self.expert_names.index("fused")
            is_fused = torch.arange(len(self.expert_names), device=per_op.device) == fused
            per_expert = torch.where(is_fused, per_op.mean(-1, keepdim=True), per_expert)
            routing = torch.where(is_fused, per_op.detach().min(-1, keepdim=True).values, routing)
        loss = self.expert_loss * per_expert.mean()
        if self.gate_loss > 0:
            loss = loss + self.gate_loss * routing_loss(
                out.gate_logits, routing + self.cost_weight * self.expert_cost
            )
            if out.op_logits is not None:
                loss = loss + self.gate_loss * routing_loss(
                    out.fusion_gate_logits, per_op.detach() + self.cost_weight * self.fusion_cost
                )
        return loss

    @property
    def _stats(self) -> bool:
        return self.statistics is not None

    def _modalities_used(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if any(m in self._needs(e) for e in self.expert_names))

    def _chosen_experts_only(self, audio, video, lengths, weights, features):
        """Run, for each group of samples with the same choice, only what it needs.
        Returns the mixed representation ``(B, P)`` and the fusion weights ``(B, K)``
        (zero rows for samples that did not take the fused expert; None without a
        fusion gate)."""
        choice = weights.argmax(-1)
        mixed = audio.new_zeros(audio.shape[0], self.encoders.pooled_dim)
        fusion_weights = None
        if self.fusion is not None and self.fusion.gate is not None:
            fusion_weights = audio.new_zeros(audio.shape[0], len(self.fusion.op_names))
        for e, expert in enumerate(self.expert_names):
            rows = torch.nonzero(choice == e).flatten()
            if rows.numel() == 0:
                continue
            steps = int(lengths[rows].max())  # the group needs no padding beyond its longest
            reps, fused = self._representations(
                audio[rows, :steps], video[rows, :steps], lengths[rows], self._needs(expert),
                features[rows], stats=expert == "stats",
            )  # fmt: skip
            mixed[rows] = (weights[rows, e, None] * reps[expert]).to(mixed.dtype)  # autocast
            if expert == "fused" and fusion_weights is not None:
                fusion_weights[rows] = fused.weights.to(fusion_weights.dtype)
        return mixed, fusion_weights

    def _output(self, mixed: Tensor, weights: Tensor, fusion_weights: Tensor | None):
        logits = self.classifier(mixed).squeeze(-1)
        aux = self.cost_weight * self.path_cost(weights, fusion_weights).mean()
        return ModelOutput(logits, weights, aux, fusion_gate=fusion_weights)
