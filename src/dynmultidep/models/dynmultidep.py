"""DynMultiDep: MT experts per modality, cross-modal sharing of the SSM state
transition, DynMM's dynamic gates (modality level, and fusion level inside the
fused expert), and a binary classifier.

Data flow for a batch ``audio (B, T, Da)``, ``video (B, T, Dv)``,
``lengths (B,)``::

    h_audio = MTExpert_audio(audio)               (B, T, d_model) step encodings
    h_video = MTExpert_video(video)               (B, T, d_model)
    r_e     = pool_e(h_e)                         (B, P) P = d_model (mean) or 2 d_model (stats)
    r_stats = Linear(functionals(audio, video))   (B, P)  if "stats" is an expert (gradient fit)
    f       = fusion_gate(features)               (B, K)  over fusion_ops, if fusion_gate
    r_fused = sum_k f_k op_k(h_a, h_v, r_a, r_v)  (B, P)  if "fused" is an expert
    w       = gate(features)                      (B, E)  softmax(. / temp), or one-hot
    logit   = classifier(sum_e w_e r_e)           (B,)
    logit   = (1 - w_s) logit + w_s l_stats        (B,)   with the closed-form statistics expert

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
much and how fast their channels vary. With ``stats_fit="closed_form"`` it is
the functionals baseline's logistic regression, fit on the training fold before
the first epoch (by the training task, ``closed_form_part``) and frozen; it gives
a logit ``l_stats``, not a representation, mixed with the classifier's logit of
the other experts by its gate weight ``w_s`` (with hard gates: one or the other).

A gate trained on its experts' training losses learns which expert fits the
training vlogs best, which on a small corpus is the one that memorises them.
With ``held_out_gate`` a share of the training vlogs (marked per batch by the
training task, ``held_out (B,)``) is kept from the experts: the experts and the
classifier learn from the other vlogs alone, and the gates learn from the held-out
ones alone, by the routing loss towards the expert (and fusion operation) whose
loss on the vlog, which it has never trained on, is lowest. DynMM trains its gate
over experts it no longer changes; here both learn at once, the gate on losses
its experts cannot have fitted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

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


def rows_mean(values: Tensor, rows: Tensor | None) -> Tensor:
    """Mean of ``values (B,)`` over ``rows (B,)`` (bool; None: all); 0 when none is."""
    if rows is None:
        return values.mean()
    return (values * rows).sum() / rows.sum().clamp_min(1)


ROUTING_TARGETS = ("argmin", "soft", "risk")


def routing_loss(
    gate_logits: Tensor, path_losses: Tensor, rows: Tensor | None = None, target: str = "argmin"
) -> Tensor:
    """What trains a gate from its paths' losses ``(B, K)`` (cost included, no gradient),
    per sample, averaged over ``rows`` (None: all). ``target``:

    - ``argmin``: cross-entropy of the logits ``(B, K)`` against the path whose loss is
      lowest (a near tie counts as much as a clear winner);
    - ``soft``: cross-entropy against ``softmax(-loss)`` over the paths: a near tie asks
      for an even split, a path whose loss is lower by a nat or more is asked for
      most of the weight;
    - ``risk``: the expected loss ``sum_k softmax(logits)_k * loss_k``, whose gradient
      on logit k is ``p_k * (loss_k - expected loss)``: each sample pulls the gate in
      proportion to how much the choice matters on it.
    """
    if target == "argmin":
        per_sample = F.cross_entropy(gate_logits.float(), path_losses.argmin(-1), reduction="none")
    elif target == "soft":
        wanted = F.softmax(-path_losses.float(), -1)
        per_sample = F.cross_entropy(gate_logits.float(), wanted, reduction="none")
    elif target == "risk":
        per_sample = (F.softmax(gate_logits.float(), -1) * path_losses.float()).sum(-1)
    else:
        raise ValueError(f"routing target must be one of {ROUTING_TARGETS}, got {target!r}")
    return rows_mean(per_sample, rows)


class DynMultiDep(nn.Module):
    """The DynMultiDep classifier; see the module docstring.

    The keyword defaults below are the seed model's; the project's defaults are
    ``conf/model/dynmultidep.yaml`` (raw-input gate, the fused and statistics
    experts, expert and routing losses, the held-out gate). The experts' options
    (``**encoder``) default to :class:`EncoderConfig`'s, which that config mirrors.

    Args:
        audio_dim, video_dim: feature widths (Da, Dv).
        share_ssm: the video expert's Mamba blocks use the audio expert's ``A``.
        temp: gates' softmax temperature. hard_gate: one-hot gates (straight-through).
        gumbel: Gumbel noise on gate logits in training.
        gate_input: ``encoded`` (pooled encodings) or ``raw`` (input statistics).
        experts: any of ``audio``, ``video``, ``fused``, ``stats`` (the statistics
            expert: functionals of both raw inputs, projected linearly or, with
            ``stats_fit="closed_form"``, a logistic regression of them).
        stats_fit, stats_penalties, stats_inner_folds: how the statistics expert
            learns (``gradient`` or ``closed_form``) and, closed-form, its candidate
            L2 penalties and inner folds (:class:`StatisticsExpert`).
        fusion_ops: the fused expert's operations (``models.fusion.FUSION_OPS``).
        fusion_gate: a fusion-level gate chooses among ``fusion_ops`` per sample (it
            reads what the modality gate reads, with the same temperature, hardness
            and noise); without it, ``fusion_ops`` names one operation.
        gate_hidden: hidden width of the gate MLPs; 0 makes the gates linear.
        soft_epochs: for this many first epochs of training, hard gates (both levels)
            train soft, so that every expert and fusion operation learns from the
            main loss before the choices harden (DynMM trains its branches before its
            gate); evaluation always uses one-hot weights. See :meth:`start_epoch`.
        cost_weight: weight of the compute term ``mean(cost)``, the expected cost of
            each sample's path through both gates (see :meth:`path_cost`).
        modality_dropout: share of training samples with one modality blanked.
        expert_loss: weight of the mean of the experts' own losses in training (with
            a fusion gate, the fused expert's is the mean of its operations' losses).
        gate_loss: weight of the routing loss, which trains the gate from each
            expert's own loss per vlog (``cost_weight`` times its cost added; the
            fused expert's is its best operation's) as ``routing_target`` says, and
            the fusion gate from its operations' losses; needs ``expert_loss > 0``.
        routing_target: what the routing loss asks of a gate (:func:`routing_loss`):
            ``argmin`` (cross-entropy against the lowest-loss path), ``soft`` (against
            the softmax of the negative losses) or ``risk`` (the expected loss under
            the gate's softmax).
        held_out_gate: the share of training vlogs held out from the experts, on which
            alone the gates learn (by the routing loss; see the module docstring);
            0 trains the gates with the experts on every vlog. Needs ``gate_loss > 0``.
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
        routing_target: str = "argmin",
        held_out_gate: float = 0.0,
        stats_fit: str = "gradient",
        stats_penalties: Sequence[float] = (1e-3,),
        stats_inner_folds: int = 5,
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
        if routing_target not in ROUTING_TARGETS:
            raise ValueError(
                f"routing_target must be one of {ROUTING_TARGETS}, got {routing_target!r}"
            )
        self.routing_target = routing_target
        if not 0 <= held_out_gate < 1:
            raise ValueError(f"held_out_gate must lie in [0, 1), got {held_out_gate}")
        if held_out_gate > 0 and gate_loss <= 0:
            raise ValueError("held_out_gate needs gate_loss > 0: the routing loss trains the gate")
        self.held_out_gate = float(held_out_gate)
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
            self.statistics = StatisticsExpert(
                audio_dim, video_dim, pooled, dropout=config.dropout, fit=stats_fit,
                penalties=stats_penalties, inner_folds=stats_inner_folds,
            )  # fmt: skip
        # the experts that give representations (the closed-form statistics expert: a logit)
        self.encoded_experts = tuple(e for e in experts if not (e == "stats" and self._stats_logit))
        self.gate = Gate(gate_in, len(experts), gate_hidden, temp, hard_gate, gumbel)
        self.soft_epochs = soft_epochs
        for gate in self._gates():
            gate.routing_only = self.held_out_gate > 0
        self.classifier = classifier_head(pooled, config.d_model, config.dropout)
        self._register_costs()

    def start_epoch(self, epoch: int) -> dict[str, float]:
        """Called by the training task at the start of each training epoch (from 0):
        the gates train soft while ``epoch < soft_epochs``. Returns what to log
        (``gate/soft_warmup``: 1 in the warm-up, 0 after; nothing without one)."""
        warming = epoch < self.soft_epochs
        for gate in self._gates():
            gate.warming = warming
        return {"gate/soft_warmup": float(warming)} if self.soft_epochs > 0 else {}

    def _gates(self) -> list[Gate]:
        """The modality gate, and the fusion-level gate if there is one."""
        fusion_gate = self.fusion.gate if self.fusion is not None else None
        return [g for g in (self.gate, fusion_gate) if g is not None]

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
                mixed, fusion_weights, stats_logit = self._chosen_experts_only(
                    audio, video, lengths, weights, features
                )
                return self._output(mixed, weights, fusion_weights, stats_logit)
            reps, fused = self._representations(
                audio, video, lengths, self._modalities_used(), features, self._stats
            )
        else:
            reps, fused = self._representations(
                audio, video, lengths, MODALITIES, None, self._stats
            )
            weights, gate_logits = self.gate.route(torch.cat([reps["audio"], reps["video"]], -1))
        stacked = torch.stack([reps[e] for e in self.encoded_experts], dim=1)  # (B, E', P)
        encoded = [self.expert_names.index(e) for e in self.encoded_experts]
        mixed = (weights[:, encoded, None] * stacked).sum(1)
        fusion_weights = None if fused is None else fused.weights
        stats_logit = reps["stats"] if self._stats_logit else None
        out = self._output(mixed, weights, fusion_weights, stats_logit)
        if self.training and self.expert_loss > 0:
            expert_logits = self.classifier(stacked).squeeze(-1)  # (B, E')
            if stats_logit is not None:
                s = self.expert_names.index("stats")
                parts = (expert_logits[:, :s], stats_logit[:, None], expert_logits[:, s:])
                expert_logits = torch.cat(parts, dim=1)  # (B, E)
            out = out._replace(expert_logits=expert_logits, gate_logits=gate_logits)
            if fused is not None and fused.op_reps is not None:
                out = out._replace(
                    op_logits=self.classifier(fused.op_reps).squeeze(-1),  # (B, K)
                    fusion_gate_logits=fused.logits,
                )
        return out

    def label_losses(
        self,
        out: ModelOutput,
        targets: Tensor,
        pos_weight: Tensor | None = None,
        held_out: Tensor | None = None,
        path_losses: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> Tensor:
        """The training losses that need labels: ``expert_loss`` times the experts' mean
        BCE, plus ``gate_loss`` times the routing cross-entropy (see the class docstring).
        With ``held_out_gate``, ``held_out (B,)`` (bool) marks the vlogs held out from the
        experts: their BCE counts for the routing loss alone, the others' for the
        experts' losses alone.

        ``path_losses``: each path's loss per sample, ``outputs (B, K), targets (B,) ->
        (B, K)``, in place of the BCE against 0/1 ``targets`` weighted by ``pos_weight``
        (:func:`own_losses`): the training task's regression objective passes its own, so
        that the experts and gates learn PHQ-8 scores as the model's output does."""
        if self.held_out_gate > 0 and held_out is None:
            raise ValueError("held_out_gate needs the batch's held_out rows (the training "
                             "task marks them when it sees the model's held_out_gate)")  # fmt: skip
        fit_rows = None if held_out is None else ~held_out
        if out.expert_logits is None:
            return out.logits.new_zeros(())
        path_losses = path_losses or partial(own_losses, pos_weight=pos_weight)
        per_expert = path_losses(out.expert_logits, targets)  # (B, E)
        routing = per_expert.detach()
        if out.op_logits is not None:  # the fused expert: its operations, each on its own
            per_op = path_losses(out.op_logits, targets)  # (B, K)
            fused = self.expert_names.index("fused")
            is_fused = torch.arange(len(self.expert_names), device=per_op.device) == fused
            per_expert = torch.where(is_fused, per_op.mean(-1, keepdim=True), per_expert)
            routing = torch.where(is_fused, per_op.detach().min(-1, keepdim=True).values, routing)
        loss = self.expert_loss * rows_mean(per_expert.mean(-1), fit_rows)
        if self.gate_loss > 0:
            loss = loss + self.gate_loss * routing_loss(
                out.gate_logits, routing + self.cost_weight * self.expert_cost, held_out,
                self.routing_target,
            )  # fmt: skip
            if out.op_logits is not None:
                loss = loss + self.gate_loss * routing_loss(
                    out.fusion_gate_logits,
                    per_op.detach() + self.cost_weight * self.fusion_cost,
                    held_out,
                    self.routing_target,
                )
        return loss

    @property
    def _stats(self) -> bool:
        return self.statistics is not None

    @property
    def _stats_logit(self) -> bool:
        """Whether the statistics expert gives a logit (closed form), not a representation."""
        return self.statistics is not None and self.statistics.closed_form

    @property
    def closed_form_part(self):
        """What the training task fits before the first epoch (``features``, ``fit_fold``,
        ``fitted``): the closed-form statistics expert's logistic regression, or None."""
        return self.statistics.logistic if self._stats_logit else None

    def _modalities_used(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if any(m in self._needs(e) for e in self.expert_names))

    def _chosen_experts_only(self, audio, video, lengths, weights, features):
        """Run, for each group of samples with the same choice, only what it needs.
        Returns the mixed representation ``(B, P)``, the fusion weights ``(B, K)``
        (zero rows for samples that did not take the fused expert; None without a
        fusion gate) and the closed-form statistics expert's logit ``(B,)`` (zero for
        samples that did not take it; None without it)."""
        choice = weights.argmax(-1)
        mixed = audio.new_zeros(audio.shape[0], self.encoders.pooled_dim)
        fusion_weights = None
        stats_logit = audio.new_zeros(audio.shape[0]) if self._stats_logit else None
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
            if expert == "stats" and stats_logit is not None:
                stats_logit[rows] = reps[expert].to(stats_logit.dtype)
                continue
            mixed[rows] = (weights[rows, e, None] * reps[expert]).to(mixed.dtype)  # autocast
            if expert == "fused" and fusion_weights is not None:
                fusion_weights[rows] = fused.weights.to(fusion_weights.dtype)
        return mixed, fusion_weights, stats_logit

    def _output(self, mixed: Tensor, weights: Tensor, fusion_weights: Tensor | None,
                stats_logit: Tensor | None = None) -> ModelOutput:  # fmt: skip
        logits = self.classifier(mixed).squeeze(-1)
        if stats_logit is not None:  # the closed-form statistics expert's logit, by its weight
            w = weights[:, self.expert_names.index("stats")]
            logits = (1 - w) * logits + w * stats_logit.to(logits.dtype)
        aux = self.cost_weight * self.path_cost(weights, fusion_weights).mean()
        return ModelOutput(logits, weights, aux, fusion_gate=fusion_weights)
