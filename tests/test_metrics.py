"""Metrics, the trivial baseline, bootstrap intervals, the LR schedule and gate annealing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchmetrics.functional.classification import binary_accuracy, binary_f1_score

from dynmultidep.evaluation.bootstrap import draw_resamples, percentile_interval
from dynmultidep.evaluation.metrics import (
    METRICS,
    all_positive_baseline,
    binary_metrics,
    bootstrap_interval,
)
from dynmultidep.tasks.callbacks.annealing import GateTemperatureAnnealing
from dynmultidep.tasks.schedules import warmup_cosine

# 8 vlogs: TP=3, FN=1, FP=1, TN=3 at threshold 0.5
PROBS = torch.tensor([0.9, 0.8, 0.6, 0.4, 0.7, 0.3, 0.2, 0.1])
LABELS = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])


def test_metrics_match_counts_worked_by_hand():
    m = binary_metrics(PROBS, LABELS)
    assert set(m) == set(METRICS)
    assert m["acc"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4) and m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    # negatives: precision 3/4, recall 3/4 -> F1 3/4; macro = mean of both classes
    assert m["macro_f1"] == pytest.approx(3 / 4)
    # AUROC = share of (positive, negative) pairs ranked correctly; 0.6 and 0.4 fall below 0.7
    assert m["auroc"] == pytest.approx(14 / 16)
    assert m["avg4"] == pytest.approx((m["acc"] + m["precision"] + m["recall"] + m["f1"]) / 4)


def test_macro_f1_differs_from_binary_f1_when_classes_differ():
    probs = torch.tensor([0.9, 0.9, 0.9, 0.1])
    labels = torch.tensor([1, 1, 0, 0])
    m = binary_metrics(probs, labels)
    f1_pos = 2 * 2 / (2 * 2 + 1)  # TP 2, FP 1, FN 0
    f1_neg = 2 * 1 / (2 * 1 + 1)  # TN 1 as the positive of the other class, FN 1
    assert m["f1"] == pytest.approx(f1_pos)
    assert m["macro_f1"] == pytest.approx((f1_pos + f1_neg) / 2)


def test_all_positive_baseline():
    labels = torch.tensor([1, 1, 1, 0, 0])
    m = all_positive_baseline(labels)
    assert m["acc"] == pytest.approx(0.6) and m["precision"] == pytest.approx(0.6)
    assert m["recall"] == 1.0 and m["f1"] == pytest.approx(2 * 0.6 / 1.6)
    assert m["auroc"] == pytest.approx(0.5)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (200,), generator=g)
    probs = (labels + torch.randn(200, generator=g) * 0.6).clamp(0, 1)
    a = bootstrap_interval(probs, labels, seed=3, resamples=300)
    assert a == bootstrap_interval(probs, labels, seed=3, resamples=300)
    assert a != bootstrap_interval(probs, labels, seed=4, resamples=300)
    point = binary_metrics(probs, labels)
    for name in ("acc", "f1"):
        low, high = a[name]
        assert low < point[name] < high and high - low < 0.2


def test_the_vectorised_bootstrap_equals_a_loop_of_torchmetrics_calls():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (37,), generator=g)
    probs = torch.rand(37, generator=g)
    probs[:3] = 0.5  # at the threshold: not depressed, as torchmetrics decides
    for threshold in (0.5, 0.3):
        got = bootstrap_interval(probs, labels, seed=5, resamples=200, threshold=threshold)
        rows = draw_resamples(len(labels), 200, 5)  # the same draws, one by one
        acc = torch.stack([binary_accuracy(probs[r], labels[r], threshold=threshold) for r in rows])
        f1 = torch.stack([binary_f1_score(probs[r], labels[r], threshold=threshold) for r in rows])
        for name, values in (("acc", acc), ("f1", f1)):
            assert got[name] == pytest.approx(percentile_interval(values.double()), abs=1e-6)


def test_warmup_cosine_schedule():
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = warmup_cosine(opt, max_epochs=10, warmup_epochs=2, min_lr_ratio=0.1)
    lrs = []
    for _ in range(11):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert lrs[2 + 4] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[10] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="warmup_epochs"):
        warmup_cosine(opt, max_epochs=3, warmup_epochs=3)


def test_plain_cosine_equals_torch_cosine_annealing():
    def lrs(make):
        param = nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=0.5)
        sched = make(opt)
        out = []
        for _ in range(8):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    ours = lrs(lambda o: warmup_cosine(o, max_epochs=8))
    torch_cosine = lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8))
    assert ours == pytest.approx(torch_cosine, abs=1e-7)


class _Gated(nn.Module):
    def __init__(self, temp):
        super().__init__()
        from dynmultidep.models.gate import Gate

        self.gate = Gate(4, 2, 8, temp=temp)


class _Module:
    def __init__(self, temp):
        self.net = _Gated(temp)
        self.logged = {}

    def log(self, name, value, **_):
        self.logged[name] = value


class _Trainer:
    def __init__(self, epoch, max_epochs):
        self.current_epoch, self.max_epochs = epoch, max_epochs


def test_gate_annealing_decays_to_the_floor_at_the_last_epoch():
    callback = GateTemperatureAnnealing(temp_min=0.1)
    module = _Module(temp=2.0)
    callback.on_train_start(_Trainer(0, 5), module)
    temps = []
    for epoch in range(5):
        callback.on_train_epoch_start(_Trainer(epoch, 5), module)
        temps.append(module.net.gate.temp)
    assert temps[0] == pytest.approx(2.0) and temps[-1] == pytest.approx(0.1)
    ratios = [b / a for a, b in zip(temps, temps[1:], strict=False)]
    assert ratios == pytest.approx([ratios[0]] * 4)  # exponential
    assert module.logged["gate/temp"] == pytest.approx(0.1)
    # the temperature is model state: a checkpoint carries it
    assert float(module.net.gate.state_dict()["temperature"]) == pytest.approx(0.1)
    # a resumed run continues the same curve from the saved temp_0
    resumed = GateTemperatureAnnealing(temp_min=0.1)
    resumed.load_state_dict(callback.state_dict())
    resumed.on_train_start(_Trainer(3, 5), module)
    resumed.on_train_epoch_start(_Trainer(3, 5), module)
    assert module.net.gate.temp == pytest.approx(temps[3])


def test_gate_annealing_with_a_fixed_decay_and_bad_arguments():
    callback = GateTemperatureAnnealing(temp_min=0.5, decay=0.5)
    module = _Module(temp=1.0)
    callback.on_train_start(_Trainer(0, 10), module)
    callback.on_train_epoch_start(_Trainer(1, 10), module)
    assert module.net.gate.temp == pytest.approx(0.5)
    callback.on_train_epoch_start(_Trainer(4, 10), module)
    assert module.net.gate.temp == pytest.approx(0.5)  # floor
    with pytest.raises(ValueError, match="temp_min"):
        GateTemperatureAnnealing(temp_min=0)
    with pytest.raises(ValueError, match="decay"):
        GateTemperatureAnnealing(decay=1.5)
