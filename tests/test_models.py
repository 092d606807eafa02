"""DynMultiDep, its gate and encoders, and the baselines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from dynmultidep.models.attention import LocalAttention
from dynmultidep.models.baselines import ConcatFusion, LateFusion, TemporalMean, Unimodal
from dynmultidep.models.dynmultidep import DynMultiDep, blank_modalities
from dynmultidep.models.encoder import EncoderConfig
from dynmultidep.models.functionals import functionals
from dynmultidep.models.gate import Gate
from dynmultidep.models.masking import masked_mean
from dynmultidep.models.statistics import StatisticsExpert

SMALL = dict(d_model=16, d_ffn=32, d_state=4, expand=2, dropout=0.0)
DA, DV = 25, 136


def batch(sizes=(30, 12, 5, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    steps = max(sizes)
    audio = torch.randn(len(sizes), steps, DA, generator=g)
    video = torch.randn(len(sizes), steps, DV, generator=g)
    return audio, video, torch.tensor(sizes)


def test_hard_gate_is_one_hot_forward_with_a_gradient():
    torch.manual_seed(0)
    gate = Gate(10, 3, hidden=8, temp=0.5, hard=True)
    weights = gate(torch.randn(6, 10))
    assert set(weights.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(weights.detach().sum(-1), torch.ones(6))
    (weights * torch.randn(6, 3)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gate.parameters())


def test_soft_gate_is_a_temperature_softmax():
    torch.manual_seed(0)
    gate = Gate(4, 2, hidden=8, temp=2.0, hard=False)
    x = torch.randn(3, 4)
    torch.testing.assert_close(gate(x), F.softmax(gate.net(x) / 2.0, dim=-1))


@pytest.mark.parametrize(
    "experts",
    [("audio", "video"), ("audio", "video", "fused"), ("audio", "video", "fused", "stats")],
)
def test_raw_gate_runs_only_chosen_experts_and_matches_the_full_computation(experts):
    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, gate_input="raw", experts=experts, **SMALL).eval()
    with torch.no_grad():  # a sharper gate, so that samples disagree on their expert
        model.gate.net[-1].weight.mul_(50.0)
    audio, video, lengths = batch((30, 12, 5, 1, 17, 9))
    audio[::2] += 4.0  # raw statistics that differ between samples
    video[1::2] -= 4.0
    calls = {"audio": 0, "video": 0, "stats": 0}
    modules = dict(model.encoders.experts.items())
    if model.statistics is not None:
        modules["stats"] = model.statistics
    for name, module in modules.items():
        module.register_forward_hook(
            lambda m, args, out, name=name: calls.__setitem__(name, calls[name] + len(args[0]))
        )
    out = model(audio, video, lengths)
    ran = dict(calls)
    weights = out.gate
    # the same decisions, computed the long way: every expert for every sample
    reps, _ = model._representations(
        audio, video, lengths, ("audio", "video"), stats="stats" in experts
    )
    stacked = torch.stack([reps[e] for e in experts], dim=1)
    expected = model.classifier((weights[..., None] * stacked).sum(1)).squeeze(-1)
    torch.testing.assert_close(out.logits, expected, rtol=1e-5, atol=1e-5)
    chosen = [experts[i] for i in weights.argmax(-1).tolist()]
    assert len(set(chosen)) > 1
    assert ran["audio"] == sum(c in ("audio", "fused") for c in chosen)
    assert ran["video"] == sum(c in ("video", "fused") for c in chosen)
    assert ran["stats"] == sum(c == "stats" for c in chosen)


def test_encoded_gate_and_aux_loss():
    torch.manual_seed(2)
    model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), cost_weight=0.3, **SMALL)
    out = model(*batch())
    assert out.logits.shape == (4,) and out.gate.shape == (4, 3)
    expected = 0.3 * (out.gate * model.expert_cost).sum(-1).mean()
    torch.testing.assert_close(out.aux_loss, expected)
    assert model.expert_cost.max() == 1.0 and model.expert_cost[2] == 1.0  # fused costs most


def test_cross_modal_sharing_in_the_model():
    shared = DynMultiDep(DA, DV, num_layers=2, share_ssm=True, **SMALL)
    a, v = shared.encoders.experts["audio"], shared.encoders.experts["video"]
    assert all(x.mixer.A_log is y.mixer.A_log for x, y in zip(a.blocks, v.blocks, strict=True))
    separate = DynMultiDep(DA, DV, num_layers=2, share_ssm=False, **SMALL)
    a, v = separate.encoders.experts["audio"], separate.encoders.experts["video"]
    assert all(x.mixer.A_log is not y.mixer.A_log for x, y in zip(a.blocks, v.blocks, strict=True))


def test_model_output_does_not_depend_on_batch_composition():
    torch.manual_seed(3)
    model = DynMultiDep(DA, DV, **SMALL).eval()
    audio, video, lengths = batch((40, 3, 17))
    together = model(audio, video, lengths).logits
    for i, n in enumerate(lengths.tolist()):
        alone = model(audio[i : i + 1, :n], video[i : i + 1, :n], lengths[i : i + 1]).logits
        torch.testing.assert_close(alone[0], together[i], rtol=1e-5, atol=1e-5)


def test_modality_dropout_blanks_one_modality_in_training_only():
    torch.manual_seed(4)
    audio, video = torch.ones(2000, 3, 2), torch.ones(2000, 3, 2)
    a, v = blank_modalities(audio, video, rate=0.5)
    blank_a = (a == 0).all(-1).all(-1)
    blank_v = (v == 0).all(-1).all(-1)
    assert not (blank_a & blank_v).any()
    assert 0.4 < (blank_a | blank_v).float().mean() < 0.6
    model = DynMultiDep(DA, DV, modality_dropout=1.0, **SMALL).eval()
    x = batch()
    torch.testing.assert_close(model(*x).logits, model(*x).logits)  # no randomness in eval


MODELS = {
    "dynmultidep": lambda: DynMultiDep(DA, DV, **SMALL),
    "dynmultidep_raw_fused": lambda: DynMultiDep(
        DA, DV, gate_input="raw", experts=("audio", "video", "fused"), gumbel=True, **SMALL
    ),
    "dynmultidep_attention": lambda: DynMultiDep(
        DA, DV, num_layers=2, mixers=["mamba", "attention"], attention_window=8, **SMALL
    ),
    "dynmultidep_causal": lambda: DynMultiDep(DA, DV, causal=True, activation="swish", **SMALL),
    "dynmultidep_no_sharing": lambda: DynMultiDep(
        DA, DV, share_ssm=False, hard_gate=False, **SMALL
    ),
    "temporal_mean": lambda: TemporalMean(DA, DV, d_model=16),
    "audio_only": lambda: Unimodal(DA, DV, modality="audio", **SMALL),
    "video_only": lambda: Unimodal(DA, DV, modality="video", **SMALL),
    "concat": lambda: ConcatFusion(DA, DV, **SMALL),
    "late": lambda: LateFusion(DA, DV, share_ssm=True, **SMALL),
}


@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_on_a_small_batch(name):
    torch.manual_seed(5)
    model = MODELS[name]().train()
    out = model(*batch())
    assert out.logits.shape == (4,) and out.aux_loss.shape == ()
    loss = (
        F.binary_cross_entropy_with_logits(out.logits, torch.tensor([1.0, 0, 1, 0])) + out.aux_loss
    )
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_no_nan_on_single_steps_or_all_zero_inputs(name):
    torch.manual_seed(6)
    model = MODELS[name]().eval()
    audio, video, _ = batch((1, 1))
    for a, v in ((audio, video), (torch.zeros_like(audio), torch.zeros_like(video))):
        out = model(a, v, torch.tensor([1, 1]))
        assert torch.isfinite(out.logits).all()


def dense_band_attention(layer: LocalAttention, x, lengths):
    """The same attention with an explicit (L, L) mask."""
    batch_size, length, width = x.shape
    q, k, v = layer.qkv(x).view(batch_size, length, 3, layer.num_heads, -1).permute(2, 0, 3, 1, 4)
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    mask = ((i - j).abs() < layer.window) & (j < lengths[:, None, None])
    if layer.causal:
        mask = mask & (j <= i)
    mask = mask | (i == j)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
    return layer.out_proj(out.transpose(1, 2).reshape(batch_size, length, width))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window", [3, 8, 64])
def test_local_attention_equals_dense_banded_attention(causal, window):
    torch.manual_seed(7)
    layer = LocalAttention(16, num_heads=2, window=window, causal=causal).eval()
    x = torch.randn(3, 21, 16)
    lengths = torch.tensor([21, 10, 1])
    got, expected = layer(x, lengths), dense_band_attention(layer, x, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(got[b, :n], expected[b, :n], rtol=1e-5, atol=1e-5)


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [50.0], [60.0]]])
    assert masked_mean(x, torch.tensor([2, 1])).flatten().tolist() == [2.0, 2.0]


def test_encoder_config_refuses_inconsistent_layers():
    with pytest.raises(ValueError, match="mixers lists 1 blocks but num_layers=2"):
        EncoderConfig(num_layers=2, mixers=["mamba"])
    with pytest.raises(ValueError, match="unknown mixer"):
        EncoderConfig(mixers=["lstm"])


CONF = Path(__file__).resolve().parents[1] / "conf"
MODEL_CONFIGS = sorted(
    p.stem for p in (CONF / "model").glob("*.yaml") if not p.stem.startswith("_")
)


@pytest.mark.parametrize("dataset", ["synthetic", "synthetic_lmvd"])
@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_model_configs_instantiate_with_the_dataset_widths(name, dataset):
    overrides = [f"+dataset={dataset}", "+paths=default", f"+model={name}"]
    if name == "temporal_mean":
        overrides += ["model.d_model=16"]
    elif name != "functionals":
        overrides += ["model.d_model=16", "model.d_ffn=32", "model.expand=2", "model.d_state=4"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(overrides=overrides)
    model = instantiate(cfg.model)
    audio = torch.randn(2, 5, cfg.dataset.audio_dim)
    video = torch.randn(2, 5, cfg.dataset.video_dim)
    assert model(audio, video, torch.tensor([5, 3])).logits.shape == (2,)


def test_model_trains_under_bf16_autocast():
    torch.manual_seed(8)
    model = DynMultiDep(DA, DV, **SMALL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*batch())
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()
    F.binary_cross_entropy_with_logits(out.logits.float(), torch.ones(4)).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_statistics_expert_projects_the_functionals_of_the_valid_steps():
    torch.manual_seed(4)
    expert = StatisticsExpert(DA, DV, out_dim=12, percentiles=(25, 75), dropout=0.5).eval()
    assert expert.width == 5 * (DA + DV) and expert.compute_cost() == expert.width
    audio, video, lengths = batch((20, 7, 1))
    audio[1, 7:] = 1e4  # garbage in the padding changes nothing
    video[2, 1:] = -1e4
    out = expert(audio, video, lengths)
    stats = torch.cat([functionals(x, lengths, (25, 75)) for x in (audio, video)], -1)
    torch.testing.assert_close(out, expert.proj(stats))
    for i, n in enumerate(lengths.tolist()):  # batch-invariant
        alone = expert(audio[i : i + 1, :n], video[i : i + 1, :n], lengths[i : i + 1])
        torch.testing.assert_close(alone[0], out[i], rtol=1e-5, atol=1e-5)


def test_statistics_expert_is_gated_trained_and_cheapest():
    torch.manual_seed(5)
    experts = ("audio", "video", "fused", "stats")
    model = DynMultiDep(DA, DV, experts=experts, gate_input="raw", expert_loss=0.5,
                        gate_loss=0.5, **SMALL)  # fmt: skip
    out = model(*batch())
    assert out.gate.shape == (4, 4) and out.expert_logits.shape == (4, 4)
    torch.testing.assert_close(out.gate.sum(-1), torch.ones(4))
    (out.logits.sum() + model.label_losses(out, torch.tensor([1, 0, 1, 0]), None)).backward()
    assert model.statistics.proj.weight.grad.abs().sum() > 0
    assert model.expert_cost.argmin() == experts.index("stats")
    with pytest.raises(ValueError, match="experts must be distinct names"):
        DynMultiDep(DA, DV, experts=("audio", "moments"), **SMALL)
