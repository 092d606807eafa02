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
from dynmultidep.models.dynmultidep import DynMultiDep
from dynmultidep.models.encoder import EncoderConfig, MTExpert
from dynmultidep.models.masking import step_deltas

SMALL = dict(d_model=8, d_ffn=16, d_state=4, expand=1, dropout=0.0)
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
    expert = MTExpert(5, EncoderConfig(**SMALL, zero_init_residual=True, output_norm=False))
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
