"""PHQ-8 regression runs' files and what reads them: predictions.csv written and read back,
metrics.json's report beside the trivial baselines, the grid summary (seeds and k-fold
pooling), and scripts/compare.py; a binary and a regression run never mix."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from dynmultidep.errors import DataError, FileError
from dynmultidep.evaluation.predictions import Predictions, read_predictions, read_run_predictions
from dynmultidep.evaluation.regression import baseline_metrics, regression_metrics
from dynmultidep.evaluation.reports import fold_report, print_report
from dynmultidep.protocols.kfold import HONEST, write_folds
from dynmultidep.sweeps.compare import compare, comparison_markdown, read_side
from dynmultidep.sweeps.summary import write_summary

N = 24
TRUE = [float((7 * i) % 25) for i in range(N)]  # 0..24, both sides of the cut-off
GENDERS = ["f" if i % 3 else "m" for i in range(N)]


def predictions(scores, ids=None, true=None, baselines=(8.0, 7.0)) -> Predictions:
    ids = ids or [str(i) for i in range(len(scores))]
    rows = [int(i) for i in ids]
    true = torch.tensor([TRUE[i] for i in rows]) if true is None else torch.as_tensor(true)
    return Predictions(
        ids, [GENDERS[i] for i in rows], None, (true >= 10).long(), None,
        scores=torch.as_tensor(scores, dtype=torch.float), true_scores=true.float(),
        baselines={"train_mean": baselines[0], "train_median": baselines[1]},
    )  # fmt: skip


def write_run(run: Path, pred: Predictions, seed: int = 0, kfold: dict | None = None) -> Path:
    """A run directory as training leaves it: predictions.csv and metrics.json."""
    run.mkdir(parents=True, exist_ok=True)
    pred.to_csv(run / "predictions.csv")
    report = fold_report(pred, seed=seed, resamples=50)
    payload = {"fold": "test", **report, "task": "train", "seed": seed}
    if kfold is not None:
        payload["kfold"] = kfold
    (run / "metrics.json").write_text(json.dumps(payload))
    return run


def noisy(offset: float, seed: int = 0) -> list[float]:
    g = torch.Generator().manual_seed(seed)
    return (torch.tensor(TRUE) + offset + torch.randn(N, generator=g) * 3).tolist()


def test_predictions_csv_round_trips_scores(tmp_path):
    pred = predictions([9.99, 10.0, 3.5, 24.5] + noisy(0)[4:])
    path = tmp_path / "predictions.csv"
    pred.to_csv(path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "gender", "label", "score", "predicted_score", "prediction"]
    assert [r["prediction"] for r in rows[:4]] == ["0", "1", "0", "1"]  # predicted >= 10
    back = read_predictions(path)
    assert back.regression and back.probs is None
    torch.testing.assert_close(back.scores, pred.scores, atol=1e-6, rtol=0)
    torch.testing.assert_close(back.true_scores, pred.true_scores)
    torch.testing.assert_close(back.decisions, pred.predicted)
    # unlabelled predictions (predict.py) leave the true score out; the output before
    # clipping to 0..24 follows the decision where it is known
    Predictions(["a", "b"], [None, None], None, None, None, scores=torch.tensor([4.0, 24.0]),
                unclipped_scores=torch.tensor([4.0, 26.5])).to_csv(path)  # fmt: skip
    assert path.read_text().splitlines() == [
        "id,gender,predicted_score,prediction,unclipped_score",
        "a,,4.000000,0,4.000000",
        "b,,24.000000,1,26.500000",
    ]


def test_a_bad_predictions_csv_is_named(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_text("id,gender,label,score,predicted_score,prediction\na,f,1,30,4.0,0\n")
    with pytest.raises(DataError, match=r"line 2: label and prediction must be 0/1, score in "
                       r"\[0, 24\]"):  # fmt: skip
        read_predictions(path)
    path.write_text("id,gender,label,score,predicted_score,prediction\na,f,1,12,high,0\n")
    with pytest.raises(DataError, match="line 2: label, score, predicted_score or prediction is "
                       "not a number"):  # fmt: skip
        read_predictions(path)


def test_the_report_puts_the_baselines_beside_every_metric(tmp_path):
    pred = predictions(noisy(1.0))
    report = fold_report(pred, seed=0, resamples=200)
    assert report["objective"] == "regression" and report["cutoff"] == 10
    assert report["metrics"] == regression_metrics(pred.scores, pred.true_scores)
    assert report["baselines"]["train_mean"]["prediction"] == 8.0
    assert report["baselines"] == baseline_metrics({"train_mean": 8.0, "train_median": 7.0},
                                                   pred.true_scores)  # fmt: skip
    assert report["depressed"] == sum(t >= 10 for t in TRUE) and report["vlogs"] == N
    low, high = report["bootstrap_95"]["rmse"]
    assert low <= report["metrics"]["rmse"] <= high
    women = [i for i, g in enumerate(GENDERS) if g == "f"]
    by_gender = report["by_gender"]["f"]
    assert by_gender["vlogs"] == len(women)
    assert by_gender["metrics"] == regression_metrics(pred.scores[women], pred.true_scores[women])
    assert by_gender["baselines"]["train_median"]["metrics"]["mae"] == pytest.approx(
        sum(abs(TRUE[i] - 7.0) for i in women) / len(women), rel=1e-5)  # fmt: skip
    console = Console(record=True, width=160)
    print_report(report, "test fold", console)
    text = console.export_text()
    assert "train-mean baseline (8.00)" in text and "train-median baseline (7.00)" in text
    assert f"{report['baselines']['train_mean']['metrics']['rmse']:.4f}" in text


def fake_sweep(sweep: Path, scores_of, k: int = 1, seeds=(0, 1)) -> Path:
    """A sweep directory of regression jobs: one per seed (``k=1``) or per fold."""
    ids = [str(i) for i in range(N)]
    folds = {vlog_id: i % k for i, vlog_id in enumerate(ids)}
    sweep.mkdir(parents=True)
    if k > 1:
        write_folds(sweep / "folds.csv", folds)
    num = 0
    for seed in seeds:
        for fold in range(k):
            job = sweep / str(num)
            (job / ".hydra").mkdir(parents=True)
            overrides = [f"seed={seed}", "module.task=regression"]
            overrides += [f"kfold.fold={fold}", "sweep=kfold"] if k > 1 else []
            (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
            rows = [vlog_id for vlog_id in ids if folds[vlog_id] == fold]
            scores = scores_of(seed)
            kfold = {"fold": fold, "k": k, "select_on_test": False, "protocol": HONEST}
            # each fold's training constants differ, as their training folds do
            pred = predictions([scores[int(i)] for i in rows], rows,
                               baselines=(8.0 + fold, 7.0 + fold))  # fmt: skip
            write_run(job, pred, seed, kfold if k > 1 else None)
            num += 1
    return sweep


def test_the_summary_lists_regression_configurations_with_their_baselines(tmp_path):
    sweep = fake_sweep(tmp_path / "s", lambda seed: noisy(seed, seed))
    (rows,) = write_summary(sweep)
    assert rows.task == "regression" and len(rows.jobs) == 2
    per_seed = [regression_metrics(torch.tensor(noisy(s, s)), torch.tensor(TRUE)) for s in (0, 1)]
    with open(sweep / "summary.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    for name in ("rmse", "ccc", "pearson", "acc", "f1"):
        expected = (per_seed[0][name] + per_seed[1][name]) / 2
        assert float(row[f"{name}_mean"]) == pytest.approx(expected, abs=1e-4), name
    baseline = baseline_metrics({"m": 8.0}, torch.tensor(TRUE))["m"]["metrics"]
    assert float(row["train_mean_rmse_mean"]) == pytest.approx(baseline["rmse"], abs=1e-4)
    assert row["train_mean_pearson_mean"] == "" and float(row["train_mean_ccc_mean"]) == 0.0
    assert float(row["f_mae_mean"]) > 0 and row["pooled_rmse"] == ""
    markdown = (sweep / "summary.md").read_text()
    assert (
        "## PHQ-8 regression" in markdown and "| configuration | seeds | accuracy" not in markdown
    )
    lines = markdown.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| `all jobs`"))
    assert lines[at + 1].startswith("| ↳ train-mean baseline |")
    assert lines[at + 2].startswith("| ↳ train-median baseline |")
    assert f"{baseline['rmse']:.3f} ± 0.000" in lines[at + 1]
    assert "### PHQ-8 regression by gender" in markdown


def test_kfold_regression_jobs_pool_with_each_folds_baseline(tmp_path):
    sweep = fake_sweep(tmp_path / "k", lambda seed: noisy(0.5), k=3, seeds=(0,))
    (row,) = write_summary(sweep)
    with open(sweep / "summary.csv", newline="") as handle:
        (cells,) = list(csv.DictReader(handle))
    pooled = regression_metrics(torch.tensor(noisy(0.5)), torch.tensor(TRUE))
    assert cells["pooled_vlogs"] == str(N)
    for name in ("rmse", "mae", "ccc", "pearson", "acc"):
        assert float(cells[f"pooled_{name}"]) == pytest.approx(pooled[name], abs=1e-4), name
    # vlog i sits in fold i % 3, whose training mean is 8 + fold
    constants = torch.tensor([8.0 + i % 3 for i in range(N)])
    mean_baseline = regression_metrics(constants, torch.tensor(TRUE))
    assert float(cells["pooled_train_mean_rmse"]) == pytest.approx(mean_baseline["rmse"],
                                                                   abs=1e-4)  # fmt: skip
    with open(sweep / "oof_predictions.csv", newline="") as handle:
        oof = list(csv.DictReader(handle))
    assert list(oof[0])[:6] == ["id", "gender", "label", "score", "predicted_score", "prediction"]
    assert sorted(r["id"] for r in oof) == sorted(str(i) for i in range(N))
    assert "### Out-of-fold PHQ-8 predictions, pooled" in (sweep / "summary.md").read_text()


def test_compare_reports_score_metrics_beside_the_baselines(tmp_path):
    a = write_run(tmp_path / "a", predictions(noisy(3.0, 0)))
    b = write_run(tmp_path / "b", predictions(noisy(0.0, 1)))
    report = compare(read_side(a), read_side(b), resamples=200)
    assert list(report["metrics"]) == ["rmse", "mae", "ccc", "acc", "f1"]
    for side, path in (("a", a), ("b", b)):
        rows = read_run_predictions(path)
        whole = regression_metrics(rows.scores, rows.true_scores)
        for name in report["metrics"]:
            assert report["metrics"][name][side] == pytest.approx(whole[name], abs=1e-5), name
    assert report["metrics"]["rmse"]["difference"] < 0  # B is closer to the true scores
    assert report["baselines"]["train_mean"]["rmse"] == pytest.approx(
        baseline_metrics({"m": 8.0}, torch.tensor(TRUE))["m"]["metrics"]["rmse"], abs=1e-5
    )
    assert report["mcnemar"] is not None
    markdown = comparison_markdown(report)
    assert "| RMSE |" in markdown and "train-median baseline (A's folds)" in markdown
    # a binary run and a regression run are not compared
    binary = tmp_path / "binary"
    binary.mkdir()
    Predictions(
        [str(i) for i in range(N)],
        GENDERS,
        torch.full((N,), 0.4),
        torch.tensor([int(t >= 10) for t in TRUE]),
        None,
    ).to_csv(binary / "predictions.csv")
    with pytest.raises(FileError, match="predicts probabilities, .* PHQ-8 scores: compare runs "
                       "of one task"):  # fmt: skip
        compare(read_side(a), read_side(binary))
