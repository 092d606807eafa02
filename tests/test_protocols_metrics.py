"""Weighted F1, expected calibration error, the tuned threshold and the per-gender
report, each against values worked out by hand."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_calibration_error,
    binary_f1_score,
)

from dynmultidep.evaluation.calibration import (
    expected_calibration_error,
    reliability_bins,
    reliability_figure,
)
from dynmultidep.evaluation.metrics import binary_metrics, decide
from dynmultidep.evaluation.predictions import Predictions
from dynmultidep.evaluation.reports import fold_report
from dynmultidep.evaluation.threshold import metrics_at, tune_threshold


def test_weighted_f1_worked_by_hand():
    # TP 2 (0.9, 0.8), FN 1 (0.2), FP 1 (0.7), TN 1 (0.1)
    probs = torch.tensor([0.9, 0.8, 0.2, 0.7, 0.1])
    labels = torch.tensor([1, 1, 1, 0, 0])
    f1_depressed = 2 * 2 / (2 * 2 + 1 + 1)  # 2/3
    f1_normal = 2 * 1 / (2 * 1 + 1 + 1)  # 1/2
    m = binary_metrics(probs, labels)
    assert m["f1"] == pytest.approx(f1_depressed)
    assert m["macro_f1"] == pytest.approx((f1_depressed + f1_normal) / 2)
    # sklearn's average="weighted": each class's F1 weighted by its 3 and 2 vlogs
    assert m["weighted_f1"] == pytest.approx(3 / 5 * f1_depressed + 2 / 5 * f1_normal)  # 0.6
    assert m["weighted_f1"] == pytest.approx(0.6)
    at = metrics_at(probs, labels, torch.tensor([0.5], dtype=torch.double))
    assert float(at["weighted_f1"][0]) == pytest.approx(0.6)


def test_threshold_sweep_agrees_with_the_reported_metrics():
    g = torch.Generator().manual_seed(0)
    for n, positives in ((9, None), (6, 6), (5, 0)):
        probs = torch.rand(n, generator=g)
        labels = torch.randint(0, 2, (n,), generator=g) if positives is None else (
            torch.full((n,), int(positives > 0)))  # fmt: skip
        thresholds = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.double)
        swept = metrics_at(probs, labels, thresholds)
        for j, t in enumerate(thresholds.tolist()):
            reported = binary_metrics(probs, labels, t)
            for name, values in swept.items():
                assert float(values[j]) == pytest.approx(reported[name], abs=1e-6), (name, t)


def test_ece_and_reliability_bins_worked_by_hand(tmp_path):
    probs = torch.tensor([0.05, 0.15, 0.12, 0.85, 0.95, 0.92])
    labels = torch.tensor([0, 0, 1, 1, 1, 0])
    # bins of 0.1: [0,.1): 0.05 (0 depressed); [.1,.2): 0.15, 0.12 (1 of 2);
    # [.8,.9): 0.85 (1 of 1); [.9,1]: 0.95, 0.92 (1 of 2)
    gaps = [1 * 0.05, 2 * abs(0.5 - 0.135), 1 * abs(1 - 0.85), 2 * abs(0.5 - 0.935)]
    expected = sum(gaps) / 6  # 0.3
    assert expected == pytest.approx(0.3)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.3)
    assert binary_metrics(probs, labels)["ece"] == pytest.approx(0.3, abs=1e-6)  # torchmetrics
    mean_prob, share, count = reliability_bins(probs, labels)
    assert count.tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 1, 2, 0]  # the last bin: p = 1
    assert share[1] == pytest.approx(0.5) and mean_prob[9] == pytest.approx(0.935)
    assert torch.isnan(share[5])
    perfect = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert expected_calibration_error(perfect, torch.tensor([0, 0, 1, 1])) == 0.0
    fig = reliability_figure(probs, labels)
    fig.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 5_000


def test_tuned_threshold_worked_by_hand():
    probs = torch.tensor([0.1, 0.3, 0.35, 0.45, 0.6, 0.8])
    labels = torch.tensor([0, 0, 1, 1, 1, 1])
    # a threshold between 0.3 and 0.35 calls exactly the four depressed vlogs depressed:
    # F1 1 (at 0.5: 2/3); the candidate there is their midpoint
    assert tune_threshold(probs, labels, "f1") == (pytest.approx(0.325), pytest.approx(1.0))
    assert binary_metrics(probs, labels)["f1"] == pytest.approx(2 * 2 / (2 * 2 + 2))
    # candidates 0.1, 0.45, 0.5, 0.85: 0.45 and 0.5 both separate these; 0.5 is nearer 0.5
    assert tune_threshold(torch.tensor([0.2, 0.7]), torch.tensor([0, 1]), "acc") == (0.5, 1.0)
    # accuracy: 0.275 (between 0.1 and 0.45) and 0.75 (between 0.6 and 0.9) both get 3 of 4
    # right, 0.5 only 2: 0.275 is nearer 0.5
    probs = torch.tensor([0.1, 0.45, 0.6, 0.9])
    assert tune_threshold(probs, torch.tensor([0, 1, 0, 1]), "acc") == (
        pytest.approx(0.275),
        pytest.approx(3 / 4),
    )
    with pytest.raises(ValueError, match="threshold_metric"):
        tune_threshold(probs, torch.tensor([0, 1, 0, 1]), "auroc")


def test_report_shows_both_thresholds_and_each_gender():
    probs = torch.tensor([0.9, 0.45, 0.4, 0.2, 0.7, 0.1])
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    predictions = Predictions(
        ids=list("abcdef"), genders=["f", "f", "m", "m", "f", "m"], probs=probs, labels=labels,
        gate=None, tuned_threshold=0.3, tuned_metric="f1",
    )  # fmt: skip
    report = fold_report(predictions, seed=0, resamples=50)
    assert report["threshold"] == 0.5
    assert report["metrics"]["acc"] == pytest.approx(3 / 6)  # a, d, f right at 0.5
    tuned = report["tuned"]
    assert tuned["threshold"] == 0.3 and tuned["metric"] == "f1" and tuned["chosen_on"] == "valid"
    assert tuned["metrics"]["acc"] == pytest.approx(5 / 6)  # only e (0.7, normal) wrong at 0.3
    assert tuned["metrics"]["auroc"] == report["metrics"]["auroc"]
    women, men = report["by_gender"]["f"], report["by_gender"]["m"]
    assert (women["vlogs"], women["depressed"], men["vlogs"], men["depressed"]) == (3, 2, 3, 1)
    assert women["metrics"]["acc"] == pytest.approx(1 / 3)  # a right; b (0.45) and e wrong
    assert men["metrics"]["acc"] == pytest.approx(2 / 3)  # d, f right; c (0.4) wrong
    assert men["metrics"]["auroc"] == pytest.approx(1.0)  # 0.4 above 0.2 and 0.1
    alone = Predictions(["a"], ["f"], torch.tensor([0.9]), torch.tensor([1]), None)
    assert fold_report(alone, seed=0, resamples=5)["by_gender"]["f"]["metrics"]["auroc"] is None
    unknown = Predictions(["a", "b"], [None, None], probs[:2], labels[:2], None)
    assert "by_gender" not in fold_report(unknown, seed=0, resamples=5)


def test_ece_equals_torchmetrics_with_probabilities_of_exactly_one(tmp_path):
    # torchmetrics bins with the right edge open: p = 1 is a bin of its own, not
    # part of [0.9, 1) (there, two vlogs at 1.0 half depressed: gap 0.5, not 0.45ish)
    probs = torch.tensor([1.0, 1.0, 0.95, 0.3, 0.0, 1.0, 0.999])
    labels = torch.tensor([1, 0, 1, 0, 0, 1, 0])
    want = float(binary_calibration_error(probs, labels, n_bins=10))
    assert expected_calibration_error(probs, labels) == pytest.approx(want, abs=1e-6)
    assert binary_metrics(probs, labels)["ece"] == pytest.approx(want, abs=1e-6)
    mean_prob, share, count = reliability_bins(probs, labels)
    assert count[-1] == 3 and mean_prob[-1] == 1.0 and share[-1] == pytest.approx(2 / 3)
    filled = count > 0
    by_bins = float(((share - mean_prob).abs() * count)[filled].sum() / count.sum())
    assert by_bins == pytest.approx(want, abs=1e-6)  # the figure's bins are torchmetrics'
    # float32 probabilities on a bin edge (0.7, 0.9): binned as torchmetrics bins them
    edge = torch.tensor([0.7, 0.65, 0.9, 0.3], dtype=torch.float32)
    edge_labels = torch.tensor([1, 0, 0, 1])
    want = float(binary_calibration_error(edge, edge_labels, n_bins=10))
    assert expected_calibration_error(edge, edge_labels) == pytest.approx(want, abs=1e-6)
    mean_prob, share, count = reliability_bins(edge, edge_labels)
    by_bins = float(((share - mean_prob).abs() * count)[count > 0].sum() / count.sum())
    assert by_bins == pytest.approx(want, abs=1e-6)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        p = torch.rand(40, generator=g).where(torch.rand(40, generator=g) > 0.2, torch.tensor(1.0))
        y = torch.randint(0, 2, (40,), generator=g)
        want = float(binary_calibration_error(p, y, n_bins=10))
        assert expected_calibration_error(p, y) == pytest.approx(want, abs=1e-6)
    reliability_figure(probs, labels).savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 5_000


def test_a_probability_at_the_threshold_is_decided_alike_everywhere(tmp_path):
    # torchmetrics decides p > t: a vlog at exactly the threshold is not depressed
    probs = torch.tensor([0.5, 0.5, 0.7, 0.2, 0.3])
    labels = torch.tensor([1, 0, 1, 0, 1])
    assert decide(probs, 0.5).tolist() == [False, False, True, False, False]
    want_acc = float(binary_accuracy(probs, labels, threshold=0.5))  # 3 of 5
    want_f1 = float(binary_f1_score(probs, labels, threshold=0.5))
    assert want_acc == pytest.approx(3 / 5)
    reported = binary_metrics(probs, labels, 0.5)
    assert reported["acc"] == pytest.approx(want_acc) and reported["f1"] == pytest.approx(want_f1)
    # macro F1 by hand with the vlogs at 0.5 called normal: depressed F1 1/2, normal 2/3
    assert reported["macro_f1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    swept = metrics_at(probs, labels, torch.tensor([0.5], dtype=torch.double))
    assert float(swept["acc"][0]) == pytest.approx(want_acc)
    assert float(swept["macro_f1"][0]) == pytest.approx(reported["macro_f1"])
    predictions = Predictions(list("abcde"), [None] * 5, probs, labels, None)
    assert predictions.predicted.tolist() == [0, 0, 1, 0, 0]
    tuned = Predictions(list("abcde"), [None] * 5, probs, labels, None, threshold=0.7)
    assert tuned.predicted.tolist() == [0, 0, 0, 0, 0]  # 0.7 is not above 0.7
    both = Predictions(list("abcde"), [None] * 5, probs, labels, None, tuned_threshold=0.5,
                       tuned_metric="f1")  # fmt: skip
    both.to_csv(tmp_path / "predictions.csv")
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    header = rows[0].split(",")
    tuned_column = [int(r.split(",")[header.index("prediction_tuned")]) for r in rows[1:]]
    assert tuned_column == [0, 0, 1, 0, 0]  # the file decides as the reports do
