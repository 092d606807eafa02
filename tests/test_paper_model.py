"""The paper's parts: MTEM (local-window Transformer branch, long-short router) and
DynMM's fusion-level gate, their configs and their dynamic inference."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from conftest import QUIET, TINY_MODEL, compose_config
from dynmultidep.models.attention import LocalAttention, LocalCrossAttention
from dynmultidep.models.dynmultidep import DynMultiDep
from dynmultidep.models.encoder import EncoderConfig, MTExpert, run_blocks
from dynmultidep.models.fusion import FusedExpert
from dynmultidep.models.gate import raw_statistics, set_dynamic
from dynmultidep.models.masking import valid_mask
from dynmultidep.models.router import LongShortRouter
from dynmultidep.tasks.callbacks.annealing import GateTemperatureAnnealing
from dynmultidep.tasks.train import train

SMALL = dict(d_model=16, d_ffn=32, d_state=4, expand=2, dropout=0.0, input_deltas=False)
PAPER = dict(
    mtem=True, attention_window=4, experts=("audio", "video", "fused"), gate_input="raw",
    fusion_gate=True, fusion_ops=("none", "mlp", "attention"),
)  # fmt: skip
DA, DV = 5, 7


def batch(sizes, seed=0, garbage=True):
    """Inputs with ``garbage`` (large random values) in the padded steps."""
    g = torch.Generator().manual_seed(seed)
    steps = max(sizes)
    lengths = torch.tensor(sizes)
    audio = torch.randn(len(sizes), steps, DA, generator=g)
    video = torch.randn(len(sizes), steps, DV, generator=g)
    if garbage:
        pad = ~valid_mask(audio, lengths)
        audio[pad] = 1e3 * torch.randn(int(pad.sum()), DA, generator=g)
        video[pad] = 1e3 * torch.randn(int(pad.sum()), DV, generator=g)
    return audio, video, lengths


def dense_band(q, k, v, lengths, window, causal):
    """Plain attention with an explicit ``(L, L)`` band mask: the reference."""
    length = q.shape[2]
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    mask = ((i - j).abs() < window) & (j < lengths[:, None, None])
    if causal:
        mask = mask & (j <= i)
    mask = mask | (i == j)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])


def reference(layer, x, context, lengths):
    """``layer`` (self- or cross-attention) computed with :func:`dense_band`."""
    if isinstance(layer, LocalAttention):
        packed = layer.qkv(x)
    else:
        packed = torch.cat((layer.q(x), layer.kv(context)), -1)
    batch, length, _ = packed.shape
    q, k, v = packed.view(batch, length, 3, layer.num_heads, -1).permute(2, 0, 3, 1, 4)
    out = dense_band(q, k, v, lengths, layer.window, layer.causal)
    return layer.out_proj(out.transpose(1, 2).flatten(2))


@pytest.mark.parametrize("kernel", [True, False], ids=["fused", "reference"])
@pytest.mark.parametrize("kind", ["self", "cross"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("sizes", "window"), [((1,), 4), ((7, 1, 3), 3), ((300, 41, 2), 16),
                                               ((2000, 1337), 64)])  # fmt: skip
def test_banded_attention_equals_dense_band_mask_values_and_gradients(
    kind, causal, sizes, window, kernel, monkeypatch
):
    torch.manual_seed(0)
    cls = LocalAttention if kind == "self" else LocalCrossAttention
    monkeypatch.setattr(cls, "kernel", kernel)
    layer = cls(16, num_heads=2, window=window, causal=causal)
    lengths = torch.tensor(sizes)
    valid = valid_mask(torch.empty(len(sizes), max(sizes)), lengths)[..., None]
    x = torch.randn(len(sizes), max(sizes), 16)
    x = torch.where(valid, x, 1e3 * torch.randn_like(x)).requires_grad_()  # garbage padding
    context = torch.randn_like(x).requires_grad_()
    target = torch.randn_like(x) * valid  # a loss on the valid steps only
    results = []
    for fn in (lambda: layer(x, lengths) if kind == "self" else layer(x, context, lengths),
               lambda: reference(layer, x, context, lengths)):  # fmt: skip
        layer.zero_grad()
        x.grad = context.grad = None
        out = fn()
        (out * target).sum().backward()
        grads = [x.grad.clone()] + [p.grad.clone() for p in layer.parameters()]
        if kind == "cross":
            grads.append(context.grad.clone())
        results.append((out * valid, grads))
    (got, got_grads), (want, want_grads) = results
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert (got_grads[0] * ~valid).abs().max() == 0  # nothing flows into padding


def test_banded_attention_scores_are_linear_in_length(monkeypatch):
    """The reference's score tensor is (B, H, L, 3 window), never (L, L): count its
    elements (the fused kernels keep none; their tiles are WIDTH x (WIDTH + 2 window))."""
    sizes = {}
    monkeypatch.setattr(LocalAttention, "kernel", False)
    layer = LocalAttention(8, num_heads=2, window=4).eval()
    original = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        sizes[q.shape[2] * q.shape[3]] = attn_mask.numel()
        return original(q, k, v, attn_mask=attn_mask, **kw)

    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        for length in (64, 2048):
            layer(torch.randn(1, length, 8))
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    assert sizes == {64: 64 * 12, 2048: 2048 * 12}  # L * 3 * window


@pytest.mark.parametrize("mode", ["soft", "hard", "fixed"])
def test_router_weights_sum_to_one_and_hard_is_one_hot_with_a_gradient(mode):
    torch.manual_seed(1)
    router = LongShortRouter(8, mode)
    if router.gate is not None:  # away from the zero start, so that samples differ
        torch.nn.init.normal_(router.gate.net[-1].weight, std=5.0)
    x = torch.randn(6, 9, 8, requires_grad=True)
    lengths = torch.tensor([9, 1, 4, 9, 2, 7])
    weights = router(x, lengths)
    assert weights.shape == (6, 2)
    torch.testing.assert_close(weights.sum(-1), torch.ones(6))
    if mode == "fixed":
        assert torch.equal(weights, torch.full((6, 2), 0.5)) and not list(router.parameters())
        return
    if mode == "hard":
        assert set(weights.detach().unique().tolist()) <= {0.0, 1.0}
    (weights * torch.randn(6, 2)).sum().backward()
    assert router.gate.net[0].weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_router_starts_as_the_fixed_mix():
    weights = LongShortRouter(8, "soft")(torch.randn(3, 5, 8), torch.tensor([5, 2, 1]))
    torch.testing.assert_close(weights, torch.full((3, 2), 0.5))


def mtem_expert(router="soft", seed=2):
    torch.manual_seed(seed)
    config = EncoderConfig(mtem=True, router=router, attention_window=3, **SMALL)
    expert = MTExpert(DA, config)
    if expert.router.gate is not None:
        torch.nn.init.normal_(expert.router.gate.net[-1].weight, std=5.0)
    return expert


def test_mtem_mixes_the_long_and_short_branches_by_the_router():
    expert = mtem_expert().eval()
    audio, _, lengths = batch((11, 6, 1))
    x0 = expert.input(audio) * valid_mask(audio, lengths)[..., None]
    w = expert.router(x0, lengths)
    long, short = run_blocks(expert.blocks, x0, lengths), run_blocks(expert.short, x0, lengths)
    mixed = w[:, 0, None, None] * long + w[:, 1, None, None] * short
    expected = expert.norm(mixed) * valid_mask(audio, lengths)[..., None]
    torch.testing.assert_close(expert(audio, lengths), expected, rtol=1e-5, atol=1e-6)
    assert all(type(b.mixer).__name__ == "LocalAttention" for b in expert.short)
    assert expert.short[0].mixer.window == 3


def test_hard_router_in_eval_runs_only_the_chosen_branch():
    expert = mtem_expert("hard", seed=3).eval()
    audio, _, lengths = batch((11, 6, 1, 9, 4, 13, 2, 8), seed=1)
    audio[::2] *= 5.0  # statistics that differ between samples
    rows = {"long": 0, "short": 0}
    for name, branch in (("long", expert.blocks), ("short", expert.short)):
        branch[0].register_forward_hook(
            lambda m, args, out, name=name: rows.__setitem__(name, rows[name] + len(args[0]))
        )
    got = expert(audio, lengths)
    ran = dict(rows)
    x0 = expert.input(audio) * valid_mask(audio, lengths)[..., None]
    choice = expert.router(x0, lengths).argmax(-1)
    assert 0 < int(choice.sum()) < len(choice)  # both branches chosen by some sample
    assert ran == {"long": int((choice == 0).sum()), "short": int((choice == 1).sum())}
    with torch.no_grad():  # the full computation: both branches for every sample
        w = expert.router(x0, lengths)  # one-hot
        long, short = (run_blocks(b, x0, lengths) for b in (expert.blocks, expert.short))
        want = expert.norm(w[:, 0, None, None] * long + w[:, 1, None, None] * short)
    want = want * valid_mask(audio, lengths)[..., None]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def paper_model(seed=4, sharp=True, **changes):
    torch.manual_seed(seed)
    model = DynMultiDep(DA, DV, **{**SMALL, **PAPER, **changes})
    if sharp:  # sharper gates, so that samples disagree on their choices
        with torch.no_grad():
            model.gate.net[-1].weight.mul_(50.0)
            model.fusion.gate.net[-1].weight.mul_(50.0)
    return model


def test_fusion_gate_weights_sum_to_one_and_hard_is_one_hot_with_a_gradient():
    model = paper_model().train()
    audio, video, lengths = batch((9, 5, 3, 8))
    out = model(audio, video, lengths)
    assert out.fusion_gate.shape == (4, 3) and out.gate.shape == (4, 3)
    for weights in (out.gate, out.fusion_gate):
        torch.testing.assert_close(weights.sum(-1), torch.ones(4))
        assert set(weights.detach().unique().tolist()) <= {0.0, 1.0}
    out.logits.sum().backward()
    assert model.fusion.gate.net[0].weight.grad.abs().sum() > 0  # straight-through
    soft = paper_model(hard_gate=False).train()(audio, video, lengths).fusion_gate
    torch.testing.assert_close(soft.sum(-1), torch.ones(4))
    assert ((soft > 0) & (soft < 1)).all()


def test_soft_epochs_make_both_gate_levels_soft_in_training_only():
    model = paper_model(soft_epochs=2)
    audio, video, lengths = batch((9, 5, 3, 8))
    assert paper_model().start_epoch(0) == {}  # no warm-up: nothing to log
    for epoch, warming in ((0, True), (1, True), (2, False)):
        assert model.start_epoch(epoch) == {"gate/soft_warmup": float(warming)}
        out = model.train()(audio, video, lengths)
        for weights in (out.gate, out.fusion_gate):
            one_hot = set(weights.detach().unique().tolist()) <= {0.0, 1.0}
            assert one_hot != warming
        out = model.eval()(audio, video, lengths)  # evaluation: one-hot, whatever the epoch
        for weights in (out.gate, out.fusion_gate):
            assert set(weights.unique().tolist()) <= {0.0, 1.0}
    assert not model.encoders.experts["audio"].router.gate.warming  # routers keep their mode
    with pytest.raises(ValueError, match="soft_epochs"):
        paper_model(soft_epochs=-1)


def test_both_gate_levels_count_in_the_resource_loss():
    model = paper_model(cost_weight=0.5).train()
    out = model(*batch((9, 5, 3, 8)))
    costs = model.fusion.op_costs()
    assert costs[0] == 0 and costs[0] < costs[1] < costs[2]  # none < mlp < attention
    scale = model.expert_cost.max() / (  # the normalisation: the costliest path
        model.encoders.compute_cost("audio") + model.encoders.compute_cost("video") + costs[2]
    )
    expected = []
    for w, f in zip(out.gate, out.fusion_gate, strict=True):
        per_expert = [model.encoders.compute_cost("audio"), model.encoders.compute_cost("video"),
                      model.encoders.compute_cost("audio") + model.encoders.compute_cost("video")
                      + float((f.detach() * costs).sum())]  # fmt: skip
        expected.append(float((w.detach() * torch.tensor(per_expert)).sum() * scale))
    torch.testing.assert_close(out.aux_loss, 0.5 * torch.tensor(expected).mean())


def test_every_fusion_operation_learns_from_its_own_loss_whichever_the_gate_picks():
    model = paper_model(expert_loss=0.5).train()
    audio, video, lengths = batch((9, 5, 3, 8))
    labels = torch.tensor([1, 0, 1, 0])
    out = model(audio, video, lengths)
    assert out.op_logits.shape == out.fusion_gate_logits.shape == (4, 3)
    own = F.binary_cross_entropy_with_logits(
        out.expert_logits, labels.float()[:, None].expand(4, 3), reduction="none"
    )
    per_op = F.binary_cross_entropy_with_logits(
        out.op_logits, labels.float()[:, None].expand(4, 3), reduction="none"
    )
    own = torch.cat([own[:, :2], per_op.mean(-1, keepdim=True)], -1)  # fused: mean of its ops
    loss = model.label_losses(out, labels, None)
    torch.testing.assert_close(loss, 0.5 * own.mean())
    loss.backward()
    for name in ("mlp", "attention"):  # each op gets a gradient of its own loss
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in model.fusion.ops[name].parameters())  # fmt: skip
    model.eval()
    assert model(audio, video, lengths).op_logits is None


def test_routing_loss_trains_the_fusion_gate_towards_its_best_operation():
    model = paper_model(expert_loss=1.0, gate_loss=1.0, cost_weight=0.25).train()
    out = model(*batch((9, 5, 3, 8)))
    labels = torch.ones(4, dtype=torch.long)
    # the expert logits say audio is best; the op logits say attention, but its cost
    # (at the cost weight) makes mlp the cheaper good choice on the last two samples
    out = out._replace(
        expert_logits=torch.tensor([[9.0, -5.0, -5.0]] * 4),
        op_logits=torch.tensor([[-5.0, -5.0, 9.0]] * 2 + [[-5.0, 5.0, 5.01]] * 2),
    )  # fmt: skip
    per_expert = F.softplus(-out.expert_logits)
    per_op = F.softplus(-out.op_logits)
    routing = torch.cat([per_expert[:, :2], per_op.min(-1, keepdim=True).values], -1)
    own = torch.cat([per_expert[:, :2], per_op.mean(-1, keepdim=True)], -1)
    best_expert = (routing + 0.25 * model.expert_cost).argmin(-1)
    best_op = (per_op + 0.25 * model.fusion_cost).argmin(-1)
    assert best_expert.tolist() == [0] * 4 and best_op.tolist() == [2, 2, 1, 1]
    expected = (own.mean() + F.cross_entropy(out.gate_logits, best_expert)
                + F.cross_entropy(out.fusion_gate_logits, best_op))  # fmt: skip
    torch.testing.assert_close(model.label_losses(out, labels, None), expected)


@pytest.mark.parametrize(("width", "expected"), [(None, 32), (8, 8), (0, None)])
def test_short_branch_ffn_width(width, expected):
    expert = MTExpert(DA, EncoderConfig(mtem=True, short_d_ffn=width, **SMALL))
    short = expert.short[0]
    got = None if short.ffn is None else short.ffn.net[0].out_features
    assert got == expected and expert.blocks[0].ffn.net[0].out_features == 32  # long: d_ffn
    audio, _, lengths = batch((6, 2))
    out = expert(audio, lengths)  # runs, padding zero
    assert out.shape == (2, 6, 16) and out[1, 2:].abs().sum() == 0
    with pytest.raises(ValueError, match="short_d_ffn"):
        EncoderConfig(mtem=True, short_d_ffn=-1)


def count_rows(model):
    """Rows each encoder and fusion operation runs on, counted by forward hooks."""
    rows = {}

    def hook(name):
        def count(module, args, out):
            rows[name] = rows.get(name, 0) + len(args[0])

        return count

    for name, expert in model.encoders.experts.items():
        expert.register_forward_hook(hook(name))
    for name, op in model.fusion.ops.items():
        op.register_forward_hook(hook(name))
    return rows


def test_dynamic_inference_runs_only_what_both_gates_chose():
    model = paper_model(seed=7).eval()  # a draw whose gates take every expert and two ops
    sizes = (30, 12, 5, 1, 17, 9, 22, 3, 14, 8, 26, 6)
    audio, video, lengths = batch(sizes, seed=5)
    audio[::3] += 4.0  # raw statistics that differ between samples
    video[1::3] -= 4.0
    rows = count_rows(model)
    with torch.no_grad():
        out = model(audio, video, lengths)
    ran = dict(rows)
    experts = [model.expert_names[i] for i in out.gate.argmax(-1).tolist()]
    fused = [e == "fused" for e in experts]
    ops = [model.fusion.op_names[i] if f else None
           for i, f in zip(out.fusion_gate.argmax(-1).tolist(), fused, strict=True)]  # fmt: skip
    assert len(set(experts)) > 1 and len({o for o in ops if o}) > 1, (experts, ops)
    assert ran.get("audio", 0) == sum(e in ("audio", "fused") for e in experts)
    assert ran.get("video", 0) == sum(e in ("video", "fused") for e in experts)
    for op in model.fusion.op_names:
        assert ran.get(op, 0) == ops.count(op), op
    assert (out.fusion_gate[~torch.tensor(fused)] == 0).all()
    # the same decisions, computed the long way: everything for every sample
    with torch.no_grad():
        steps = {m: model.encoders.encode(m, x, lengths) for m, x in (("audio", audio),
                                                                     ("video", video))}  # fmt: skip
        reps = {m: model.encoders.pool(m, steps[m], lengths) for m in steps}
        each = torch.stack([op(steps["audio"], steps["video"], reps["audio"], reps["video"],
                               lengths) for op in model.fusion.ops.values()], 1)  # fmt: skip
        f = F.one_hot(
            model.fusion.gate(raw_statistics(audio, video, lengths)).argmax(-1), 3
        ).float()
        reps["fused"] = (f[..., None] * each).sum(1)
        stacked = torch.stack([reps[e] for e in model.expert_names], 1)
        want = model.classifier((out.gate[..., None] * stacked).sum(1)).squeeze(-1)
    torch.testing.assert_close(out.logits, want, rtol=1e-5, atol=1e-5)


def test_dynamic_off_runs_everything_with_the_same_outputs():
    model = paper_model(seed=7, router="hard").eval()
    audio, video, lengths = batch((30, 12, 5, 1, 17, 9), seed=5)
    audio[::3] += 4.0
    rows = count_rows(model)
    with torch.no_grad():
        dynamic = model(audio, video, lengths)
        skipped = dict(rows)
        rows.clear()
        full = set_dynamic(model, False)(audio, video, lengths)
    assert sum(skipped.values()) < sum(rows.values())
    assert rows == {name: 6 for name in ("audio", "video", *model.fusion.op_names)}
    torch.testing.assert_close(full.logits, dynamic.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(full.gate, dynamic.gate)
    fused = dynamic.gate.argmax(-1) == model.expert_names.index("fused")
    torch.testing.assert_close(full.fusion_gate[fused], dynamic.fusion_gate[fused])
    assert set_dynamic(model, True) is model and model.gate.skips()


@pytest.mark.parametrize("router", ["soft", "hard"])
@pytest.mark.parametrize("gate_input", ["raw", "encoded"])
def test_paper_model_does_not_depend_on_batch_composition(router, gate_input):
    model = paper_model(router=router, gate_input=gate_input, sharp=False).eval()
    audio, video, lengths = batch((40, 3, 17, 9), seed=6)
    with torch.no_grad():
        together = model(audio, video, lengths).logits
        for i, n in enumerate(lengths.tolist()):
            alone = model(audio[i : i + 1, :n], video[i : i + 1, :n], lengths[i : i + 1]).logits
            torch.testing.assert_close(alone[0], together[i], rtol=1e-5, atol=1e-5)


def test_fusion_options_are_checked():
    config = EncoderConfig(**SMALL)
    with pytest.raises(ValueError, match="fusion_gate needs two or more"):
        FusedExpert(("mlp",), config, gate=True, gate_in=4)
    with pytest.raises(ValueError, match="without fusion_gate, give exactly one"):
        FusedExpert(("none", "mlp"), config)
    with pytest.raises(ValueError, match="distinct names"):
        FusedExpert(("mlp", "sum"), config)
    with pytest.raises(ValueError, match="needs the fused expert"):
        DynMultiDep(DA, DV, fusion_gate=True, fusion_ops=("none", "mlp"), **SMALL)
    with pytest.raises(ValueError, match="unknown router"):
        EncoderConfig(router="sometimes")


def test_checkpoints_with_the_earlier_fusion_names_load():
    model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), **SMALL)
    state = {k.replace("fusion.ops.mlp.pool.", "fuse_pool.").replace("fusion.ops.mlp.", "fuse."): v
             for k, v in model.state_dict().items()}  # fmt: skip
    assert any(k.startswith("fuse.") for k in state)
    fresh = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), **SMALL)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.fusion.ops["mlp"].net[0].weight, model.fusion.ops["mlp"].net[0].weight)


def test_annealing_sets_both_gate_levels():
    model = paper_model(temp=2.0)

    class Module:
        net = model

    callback = GateTemperatureAnnealing(temp_min=0.5)
    callback.temp_0 = 2.0
    for gate in callback._gates(Module):
        gate.temp = callback.temperature(3, 4)
    assert model.gate.temp == model.fusion.gate.temp == pytest.approx(0.5)


def built(overrides):
    cfg = compose_config("train", ["paths.output_dir=/tmp/dynmultidep-test-run", *overrides])
    return cfg, instantiate(cfg.model)


def test_paper_configs_reach_the_built_modules():
    cfg, model = built(["model=dynmultidep_paper"])
    audio = model.encoders.experts["audio"]
    assert audio.router.mode == "soft" and audio.short[0].mixer.window == cfg.model.attention_window
    assert model.fusion.op_names == ("none", "mlp", "attention") and model.fusion.gate is not None
    assert model.gate_input == "raw" and model.expert_names == ("audio", "video", "fused")
    attention = model.fusion.ops["attention"].audio_to_video
    assert attention.window == cfg.model.attention_window
    shared = model.encoders.experts["video"].blocks[0].mixer.A_log
    assert shared is audio.blocks[0].mixer.A_log  # A is still shared across modalities
    _, model = built(["model=dynmultidep_paper", "model.router=hard", "model.attention_window=5",
                      "model.short_d_ffn=24", "model.soft_epochs=4"])  # fmt: skip
    assert model.soft_epochs == 4
    assert model.encoders.experts["video"].router.hard
    assert model.encoders.experts["video"].short[0].mixer.window == 5
    assert model.encoders.experts["video"].short[0].ffn.net[0].out_features == 24


ABLATIONS = {
    "dynmultidep_paper_no_local": lambda m: (
        m.encoders.experts["audio"].router is None
        and type(m.encoders.experts["audio"].blocks[0].mixer).__name__ == "Mamba"
    ),
    "dynmultidep_paper_no_mamba": lambda m: (
        m.encoders.experts["audio"].router is None
        and type(m.encoders.experts["audio"].blocks[0].mixer).__name__ == "LocalAttention"
    ),
    "dynmultidep_paper_fixed_router": lambda m: m.encoders.experts["audio"].router.mode == "fixed",
    "dynmultidep_paper_no_modality_gate": lambda m: (
        m.expert_names == ("fused",) and m.fusion.gate is not None
    ),
    "dynmultidep_paper_no_fusion_gate": lambda m: (
        m.fusion.gate is None
        and m.fusion.op_names == ("mlp",)
        and m.encoders.experts["audio"].router is not None
    ),
}


@pytest.mark.parametrize("name", ABLATIONS)
def test_ablation_configs_build_what_they_say(name):
    _, model = built([f"model={name}"])
    assert ABLATIONS[name](model)


@pytest.mark.parametrize("corpus", ["dvlog", "lmvd"])
def test_paper_recipes_are_the_published_ones_with_the_papers_parts(corpus):
    published = compose_config("train", [f"experiment={corpus}_dynmultidep"])
    paper = compose_config("train", [f"experiment={corpus}_dynmultidep_paper"])
    parts = dict(mtem=True, router="soft", gate_input="raw", fusion_gate=True)
    for key, value in parts.items():
        assert paper.model[key] == value, key
    assert list(paper.model.fusion_ops) == ["none", "mlp", "attention"]
    assert list(paper.model.experts) == ["audio", "video", "fused"]
    assert paper.model.short_d_ffn == paper.model.d_model and paper.model.soft_epochs == 3
    changed = {*parts, "fusion_ops", "experts", "attention_window", "short_d_ffn", "soft_epochs"}
    for key in published.model:
        if key not in changed:
            assert paper.model[key] == published.model[key], key
    assert paper.trainer.max_epochs == published.trainer.max_epochs == 120
    assert paper.module.optimizer.lr == published.module.optimizer.lr


def test_paper_model_trains_end_to_end(synthetic_corpus, tmp_path):
    root, _ = synthetic_corpus("dvlog", "tiny")
    cfg = compose_config("train", [
        "model=dynmultidep_paper", "dataset=dvlog", f"dataset.root={root}",
        "dataset.batch_size=8", "dataset.max_tokens=null", "trainer.max_epochs=2",
        f"paths.output_dir={tmp_path}", "model.router=hard", "model.soft_epochs=1",
        *TINY_MODEL, *QUIET,
    ])  # fmt: skip
    train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["fold"] == "test" and 0.0 <= metrics["metrics"]["acc"] <= 1.0
    with (tmp_path / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert all(f"val/fusion_routed_{op}" in rows[0] for op in ("none", "mlp", "attention"))
    warmup = [float(r["gate/soft_warmup"]) for r in rows if r["gate/soft_warmup"]]
    assert warmup == [1.0, 0.0]  # the first epoch soft, the second hard
