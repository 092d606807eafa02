"""Options that make the MT-expert models learn: deltas, stochastic depth, zero-initialised
residual branches, expert and routing losses, random crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dynmultidep.data.dataset import VlogDataset
from dynmultidep.data.sampler import LengthBucketSampler
from dynmultidep.data.vlogs import Vlog
from dynmultidep.models.dynmultidep import DynMultiDep, routing_loss
from dynmultidep.models.encoder import EncoderConfig, MTExpert
from dynmultidep.models.masking import step_deltas

SMALL = dict(d_model=8, d_ffn=16, d_state=4, expand=1, dropout=0.0, input_deltas=False)
DA, DV = 25, 136


def batch(sizes=(9, 4, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    steps = max(sizes)
    return (torch.randn(len(sizes), steps, DA, generator=g),
            torch.randn(len(sizes), steps, DV, generator=g), torch.tensor(sizes))  # fmt: skip


def test_step_deltas_are_differences_within_each_length():
    x = torch.tensor([[[1.0], [4.0], [6.0], [9.0]], [[2.0], [5.0], [7.0], [7.0]]])
    out = step_deltas(x, torch.tensor([4, 2]))
    assert out[0, :, 0].tolist() == [0.0, 3.0, 2.0, 3.0]
    assert out[1, :, 0].tolist() == [0.0, 3.0, 0.0, 0.0]  # nothing from padding


def test_zero_initialised_residual_blocks_start_as_the_identity():
    torch.manual_seed(0)
    config = EncoderConfig(**SMALL, zero_init_residual=True, output_norm=False, drop_path=0.0)
    expert = MTExpert(5, config)
    x, lengths = torch.randn(2, 6, 5), torch.tensor([6, 3])
    projected = expert.input(x) * (torch.arange(6) < lengths[:, None])[..., None]
    torch.testing.assert_close(expert(x, lengths), projected)
    # and they learn: the branch's last layer gets a gradient
    expert(x, lengths).pow(2).sum().backward()
    assert expert.blocks[0].mixer.out_proj.weight.grad.abs().sum() > 0


def test_drop_path_skips_branches_per_sample_in_training_only():
    torch.manual_seed(0)
    expert = MTExpert(5, EncoderConfig(**SMALL, drop_path=0.5))
    x, lengths = torch.randn(64, 6, 5), torch.full((64,), 6)
    expert.eval()
    torch.testing.assert_close(expert(x, lengths), expert(x, lengths))
    expert.train()
    block = expert.blocks[0]
    y = torch.ones(64, 6, 8)
    kept = block._branch(y)[:, 0, 0]
    assert set(kept.unique().tolist()) <= {0.0, 2.0} and 10 < int((kept == 0).sum()) < 54


def test_expert_and_routing_losses():
    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), pooling="stats",
                        expert_loss=0.5, gate_loss=1.0, **SMALL)  # fmt: skip
    audio, video, lengths = batch()
    labels = torch.tensor([1, 0, 1])
    out = model(audio, video, lengths)
    assert out.expert_logits.shape == out.gate_logits.shape == (3, 3)
    per_expert = F.binary_cross_entropy_with_logits(
        out.expert_logits, labels.float()[:, None].expand(3, 3), reduction="none"
    )
    expected = 0.5 * per_expert.mean() + F.cross_entropy(out.gate_logits, per_expert.argmin(-1))
    torch.testing.assert_close(model.label_losses(out, labels, None), expected)
    loss = model.label_losses(out, labels, None)
    loss.backward()
    assert model.gate.net[0].weight.grad.abs().sum() > 0  # the gate learns from routing
    model.eval()
    assert model(audio, video, lengths).expert_logits is None
    with pytest.raises(ValueError, match="gate_loss needs expert_loss"):
        DynMultiDep(DA, DV, gate_loss=1.0, **SMALL)


def test_expert_and_routing_losses_take_the_regression_objectives_path_losses():
    from dynmultidep.tasks.objectives import RegressionObjective

    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), pooling="stats",
                        expert_loss=0.5, gate_loss=1.0, **SMALL)  # fmt: skip
    out = model(*batch())
    targets = torch.tensor([1.5, -0.5, 0.0])  # standardised PHQ-8 scores
    squared = (out.expert_logits - targets[:, None]) ** 2  # (B, E): each expert's own error
    expected = 0.5 * squared.mean() + F.cross_entropy(out.gate_logits, squared.argmin(-1))
    objective = RegressionObjective("mse")
    loss = model.label_losses(out, targets, path_losses=objective.path_losses)
    torch.testing.assert_close(loss, expected)
    held = torch.tensor([False, True, False])  # the held-out vlog trains the gate alone
    rows = ~held
    expected = 0.5 * (squared.mean(-1) * rows).sum() / rows.sum() + F.cross_entropy(
        out.gate_logits[held], squared[held].argmin(-1))  # fmt: skip
    torch.testing.assert_close(
        model.label_losses(out, targets, held_out=held, path_losses=objective.path_losses),
        expected,
    )


def test_routing_targets_prefer_cheaper_experts_by_the_cost_weight():
    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, experts=("audio", "fused"), expert_loss=1.0, gate_loss=1.0,
                        cost_weight=100.0, **SMALL)  # fmt: skip
    out = model(*batch())
    # however well the fused expert does, a huge cost weight routes to audio
    zero = out._replace(expert_logits=torch.tensor([[-5.0, 9.0]] * 3))
    loss = model.label_losses(zero, torch.ones(3, dtype=torch.long), None)
    target = F.cross_entropy(out.gate_logits, torch.zeros(3, dtype=torch.long))
    per_expert = F.binary_cross_entropy_with_logits(
        zero.expert_logits, torch.ones(3, 2), reduction="none"
    )
    torch.testing.assert_close(loss, per_expert.mean() + target)


def test_the_risk_routing_target_is_the_expected_loss_under_the_gate():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]], requires_grad=True)
    losses = torch.tensor([[0.2, 0.4], [1.0, 3.0]])
    p = 1 / (1 + np.exp(-2.0))  # softmax of (2, 0), first entry
    expected = ((0.2 + 0.4) / 2 + (p * 1.0 + (1 - p) * 3.0)) / 2
    loss = routing_loss(logits, losses, target="risk")
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # each logit moves by p_k (loss_k - expected loss): the second row, whose choice
    # matters ten times more, pulls ten times harder
    first = 0.5 * 0.5 * (0.2 - 0.3)
    assert logits.grad[0, 0].item() == pytest.approx(first, rel=1e-5)
    second = 0.5 * p * (1.0 - (p * 1.0 + (1 - p) * 3.0))
    assert logits.grad[1, 0].item() == pytest.approx(second, rel=1e-5)
    # only the given rows count; the default target is the lowest-loss path
    rows = torch.tensor([False, True])
    assert routing_loss(logits, losses, rows, "risk").item() == pytest.approx(
        p * 1.0 + (1 - p) * 3.0, rel=1e-6
    )
    torch.testing.assert_close(
        routing_loss(logits, losses), F.cross_entropy(logits, torch.tensor([0, 0]))
    )
    with pytest.raises(ValueError, match="routing target"):
        routing_loss(logits, losses, target="best")


def test_the_soft_routing_target_splits_near_ties_and_follows_clear_winners():
    logits = torch.zeros(2, 2, requires_grad=True)
    losses = torch.tensor([[0.30, 0.31], [0.1, 3.1]])
    # wanted weights: softmax(-loss) per row, worked out by hand
    q_tie = 1 / (1 + np.exp(-0.01))
    q_clear = 1 / (1 + np.exp(-3.0))
    loss = routing_loss(logits, losses, target="soft")
    assert loss.item() == pytest.approx(np.log(2.0), rel=1e-6)  # uniform logits: log 2 per row
    loss.backward()
    # the cross-entropy's gradient is (p - q) / B: a near tie barely moves the gate
    assert logits.grad[0, 0].item() == pytest.approx((0.5 - q_tie) / 2, abs=1e-6)
    assert logits.grad[1, 0].item() == pytest.approx((0.5 - q_clear) / 2, rel=1e-5)
    assert abs(logits.grad[1, 0].item()) > 40 * abs(logits.grad[0, 0].item())


def test_a_linear_gate_trains_by_the_risk_routing_target():
    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, experts=("audio", "video"), gate_input="raw", gate_hidden=0,
                        expert_loss=0.5, gate_loss=1.0, routing_target="risk", **SMALL)  # fmt: skip
    assert isinstance(model.gate.net, torch.nn.Linear)
    audio, video, lengths = batch()
    labels = torch.tensor([1, 0, 1])
    out = model(audio, video, lengths)
    per_expert = F.binary_cross_entropy_with_logits(
        out.expert_logits, labels.float()[:, None].expand(3, 2), reduction="none"
    )
    risk = (F.softmax(out.gate_logits, -1) * per_expert.detach()).sum(-1).mean()
    expected = 0.5 * per_expert.mean() + risk
    torch.testing.assert_close(model.label_losses(out, labels, None), expected)
    model.label_losses(out, labels, None).backward()
    assert model.gate.net.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="routing_target"):
        DynMultiDep(DA, DV, routing_target="best", **SMALL)
    with pytest.raises(ValueError, match="hidden width"):
        DynMultiDep(DA, DV, gate_hidden=-1, **SMALL)


def test_random_crops_are_windows_of_at_least_the_fraction():
    audio = np.arange(40, dtype=np.float32).reshape(20, 2)
    vlog = Vlog("7", 1, "f", audio, np.zeros((20, 136), np.float32))
    dataset = VlogDataset([vlog], random_crop=0.5, seed=3)
    lengths = set()
    for epoch in range(200):
        item = dataset[(0, epoch)]
        first = int(item["audio"][0, 0]) // 2
        np.testing.assert_array_equal(item["audio"], audio[first : first + len(item["audio"])])
        lengths.add(len(item["audio"]))
    assert min(lengths) >= 10 and max(lengths) == 20 and len(lengths) > 5
    assert len(VlogDataset([vlog])[0]["audio"]) == 20


def test_random_crops_depend_on_seed_epoch_and_item_only():
    vlogs = [Vlog(str(i), i % 2, "f", np.random.default_rng(i).normal(size=(30, 2)),
                  np.zeros((30, 136), np.float32)) for i in range(4)]  # fmt: skip
    dataset = VlogDataset(vlogs, random_crop=0.3, seed=1)
    window = dataset[(2, 5)]["audio"]
    np.random.seed(123)  # noqa: NPY002 (global state must not matter)
    np.testing.assert_array_equal(VlogDataset(vlogs, random_crop=0.3, seed=1)[(2, 5)]["audio"],
                                  window)  # fmt: skip
    others = [dataset[(2, e)]["audio"] for e in range(6, 12)]
    assert any(o.shape != window.shape or not np.array_equal(o, window) for o in others)
    reseeded = [VlogDataset(vlogs, random_crop=0.3, seed=s)[(2, 5)]["audio"] for s in range(2, 8)]
    assert any(o.shape != window.shape or not np.array_equal(o, window) for o in reseeded)
    sampler = LengthBucketSampler(dataset.lengths, batch_size=2, seed=1, with_epoch=True)
    sampler.set_epoch(4)
    keys = [key for batch in sampler for key in batch]
    assert sorted(keys) == [(i, 4) for i in range(4)]
