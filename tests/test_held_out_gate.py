"""The gate trained on held-out losses (``held_out_gate``) and the closed-form statistics
expert (``stats_fit=closed_form``): in the model, in the data module, through train.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from conftest import QUIET, compose_config
from dynmultidep.data.dataset import PadCollate, VlogDataset
from dynmultidep.data.vlogs import Vlog
from dynmultidep.models.dynmultidep import DynMultiDep
from dynmultidep.models.gate import Gate, set_dynamic
from dynmultidep.models.logistic import cross_validated_fit

SMALL = dict(d_model=8, d_ffn=16, d_state=4, expand=1, dropout=0.0)
DA, DV = 25, 136
EXPERTS = ("audio", "video", "fused", "stats")


def batch(sizes=(9, 4, 1, 6), seed=0):
    g = torch.Generator().manual_seed(seed)
    steps = max(sizes)
    return (torch.randn(len(sizes), steps, DA, generator=g),
            torch.randn(len(sizes), steps, DV, generator=g), torch.tensor(sizes))  # fmt: skip


def fitted_stats_model(**options) -> DynMultiDep:
    """A model whose closed-form statistics expert is fit to a batch's functionals."""
    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, experts=EXPERTS, gate_input="raw", stats_fit="closed_form",
                        stats_penalties=(1.0,), **options, **SMALL)  # fmt: skip
    audio, video, lengths = batch()
    part = model.closed_form_part
    part.fit_fold(part.features(audio, video, lengths), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    return model


def test_a_routing_only_gate_learns_from_its_logits_alone():
    torch.manual_seed(0)
    gate = Gate(6, 3, hidden=8, hard=True)
    gate.routing_only = True
    features = torch.randn(5, 6, requires_grad=True)
    weights, logits = gate.route(features)
    assert not weights.requires_grad  # the main loss cannot reach the gate through them
    logits.sum().backward()
    assert gate.net[0].weight.grad.abs().sum() > 0 and features.grad is None
    gate.eval()  # in evaluation it routes as any gate
    torch.testing.assert_close(gate.route(features)[0], F.one_hot(logits.argmax(-1), 3).float())


def test_held_out_rows_train_the_gate_and_the_others_the_experts():
    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), expert_loss=0.5,
                        gate_loss=2.0, held_out_gate=0.25, **SMALL)  # fmt: skip
    out = model.train()(*batch())
    labels = torch.tensor([1, 0, 1, 0])
    held = torch.tensor([True, False, False, True])
    per_expert = F.binary_cross_entropy_with_logits(
        out.expert_logits, labels.float()[:, None].expand(4, 3), reduction="none"
    )
    routing = F.cross_entropy(out.gate_logits[held], per_expert[held].argmin(-1))
    expected = 0.5 * per_expert[~held].mean() + 2.0 * routing
    loss = model.label_losses(out, labels, None, held)
    torch.testing.assert_close(loss, expected)
    # the gate's weights carry no gradient: the main loss trains the experts alone
    assert not out.gate.requires_grad
    with pytest.raises(ValueError, match="held_out rows"):
        model.label_losses(out, labels, None)
    with pytest.raises(ValueError, match="needs gate_loss"):
        DynMultiDep(DA, DV, expert_loss=0.5, held_out_gate=0.2, **SMALL)
    with pytest.raises(ValueError, match="held_out_gate must lie"):
        DynMultiDep(DA, DV, expert_loss=0.5, gate_loss=1.0, held_out_gate=1.0, **SMALL)


def test_the_fusion_gate_too_learns_on_held_out_rows_only():
    torch.manual_seed(0)
    model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), fusion_gate=True,
                        fusion_ops=("none", "mlp"), gate_input="raw", expert_loss=1.0,
                        gate_loss=1.0, held_out_gate=0.5, **SMALL)  # fmt: skip
    assert model.fusion.gate.routing_only and model.gate.routing_only
    out = model.train()(*batch())
    held = torch.tensor([False, True, False, False])
    loss = model.label_losses(out, torch.tensor([1, 0, 1, 0]), None, held)
    loss.backward()
    assert model.fusion.gate.net[0].weight.grad.abs().sum() > 0


def test_the_closed_form_statistics_expert_gives_the_logistic_logit_and_stays_frozen():
    model = fitted_stats_model(expert_loss=0.5, gate_loss=0.5)
    part = model.closed_form_part
    assert bool(part.fitted) and not any(p.requires_grad for p in part.parameters())
    assert all("logistic" not in n for n, p in model.named_parameters() if p.requires_grad)
    audio, video, lengths = batch()
    stats_logit = part.logit(audio, video, lengths)
    model.eval()
    with torch.no_grad():  # route every vlog to the statistics expert
        model.gate.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 50.0]))
    torch.testing.assert_close(model(audio, video, lengths).logits, stats_logit)
    model.train()
    out = model(audio, video, lengths)
    assert out.expert_logits.shape == (4, 4)
    torch.testing.assert_close(out.expert_logits[:, 3], stats_logit)


def test_the_closed_form_statistics_expert_runs_alone_for_the_vlogs_that_take_it():
    model = fitted_stats_model().eval()
    with torch.no_grad():  # a sharper gate, so that vlogs disagree on their expert
        model.gate.net[-1].weight.mul_(80.0)
    audio, video, lengths = batch((30, 12, 5, 1, 17, 9))
    audio[::2] += 4.0
    video[1::2] -= 4.0
    dynamic = model(audio, video, lengths)
    full = set_dynamic(model, False)(audio, video, lengths)
    torch.testing.assert_close(dynamic.logits, full.logits, rtol=1e-5, atol=1e-5)
    assert len(set(dynamic.gate.argmax(-1).tolist())) > 1


def test_the_statistics_expert_names_its_fits():
    with pytest.raises(ValueError, match="fit must be one of"):
        DynMultiDep(DA, DV, experts=EXPERTS, stats_fit="lbfgs", **SMALL)


def vlog(i: int, label: int) -> Vlog:
    return Vlog(str(i), label, "f", np.full((5, 2), i, np.float32), np.zeros((5, 136), np.float32))


def test_batches_mark_the_vlogs_held_out_and_their_crops():
    vlogs = [vlog(i, i % 2) for i in range(6)]
    dataset = VlogDataset(vlogs, [(1, 0, 3), (2, 1, 4)], held_out=frozenset({"1", "4"}))
    batch = PadCollate()([dataset[i] for i in range(len(dataset))])
    assert batch["held_out"].tolist() == [False, True, False, False, True, False, True, False]
    assert "held_out" not in PadCollate()([VlogDataset(vlogs)[0]])


def test_the_data_module_holds_out_a_stratified_seeded_share(tmp_path):
    def held(seed):
        cfg = compose_config("train", [f"dataset.root={tmp_path}/corpus", f"dataset.seed={seed}"])
        datamodule = instantiate(cfg.dataset, _convert_="all")
        datamodule.prepare_data()
        return datamodule, datamodule.hold_out(0.25)

    datamodule, chosen = held(0)
    train = {v.id: v.label for v in datamodule.fold("train")}
    for label in (0, 1):
        members = [i for i, y in train.items() if y == label]
        assert sum(i in chosen for i in members) == round(0.25 * len(members))
    assert held(0)[1] == chosen and held(1)[1] != chosen
    marks = next(iter(datamodule.train_dataloader()))["held_out"]
    assert marks.dtype == torch.bool


def test_held_out_gate_and_closed_form_statistics_through_train_py(tmp_path):
    from dynmultidep.tasks.checkpoint import read_checkpoint
    from dynmultidep.tasks.train import train

    cfg = compose_config("train", [
        "dataset.synthetic.preset=tiny", f"dataset.root={tmp_path}/corpus",
        "dataset.batch_size=8", "trainer.max_epochs=2", "model.d_model=8", "model.d_ffn=16",
        "model.experts=[audio,video,fused,stats]", "model.stats_fit=closed_form",
        "model.stats_penalties=[0.1,10]", "model.stats_inner_folds=3",
        "model.gate_loss=0.5", "model.held_out_gate=0.25", "logger=csv", *QUIET,
        f"paths.output_dir={tmp_path}/run",
    ])  # fmt: skip
    train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["closed_form_fit"]["penalty"] in (0.1, 10.0)
    logged = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {f"train/held_out_loss_{e}" for e in EXPERTS} <= set(logged)
    # the statistics expert is the logistic regression of the vlogs not held out, unchanged
    # by training
    datamodule = instantiate(cfg.dataset, _convert_="all")
    datamodule.setup("fit")
    held = datamodule.hold_out(0.25)
    batches = list(datamodule.fold_dataloader("train"))
    part = instantiate(cfg.model).closed_form_part
    features = torch.cat([part.features(b["audio"], b["video"], b["lengths"]) for b in batches])
    labels = torch.cat([b["label"] for b in batches]).float()
    keep = torch.tensor([i not in held for b in batches for i in b["id"]])
    assert 0 < int((~keep).sum()) < len(keep)
    expected = cross_validated_fit(features[keep], labels[keep], (0.1, 10.0), 3, cfg.seed)
    state = read_checkpoint(report["checkpoint"])["state_dict"]
    weight = state["net.statistics.logistic.linear.weight"][0]
    torch.testing.assert_close(weight, expected.weight.float())
