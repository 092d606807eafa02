"""scripts/compare.py on hand-made runs and k-fold sweeps: identical predictions show
no difference (p = 1), a planted one is found, mismatched test vlogs are refused; the
sweep summary pools out-of-fold predictions and labels the optimistic protocol."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import REPO
from dynmultidep.evaluation.metrics import binary_metrics
from dynmultidep.evaluation.predictions import Predictions
from dynmultidep.protocols.kfold import HONEST, OPTIMISTIC, write_folds
from dynmultidep.sweeps.summary import write_summary

N = 40


def load_compare():
    spec = importlib.util.spec_from_file_location("compare", REPO / "scripts" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def write_run(run: Path, ids, labels, probs, genders=None) -> Path:
    """A run directory as training leaves it (the files compare.py reads)."""
    run.mkdir(parents=True, exist_ok=True)
    genders = genders or ["f" if i % 2 else "m" for i in range(len(ids))]
    Predictions(list(ids), genders, torch.as_tensor(probs, dtype=torch.float),
                torch.as_tensor(labels), None).to_csv(run / "predictions.csv")  # fmt: skip
    return run


def labelled(n: int = N, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    noisy = (torch.rand(n, generator=g) * 0.6 + 0.2).tolist()  # decisions right about half
    return [str(i) for i in range(n)], labels, noisy


def run_compare(capsys, *argv) -> tuple[int, str, str]:
    main = load_compare()
    with pytest.raises(SystemExit) as code:
        from dynmultidep.cli import run_cli

        run_cli(main, [str(a) for a in argv])
    out = capsys.readouterr()
    return code.value.code, out.out, out.err


def test_identical_runs_show_no_difference(tmp_path, capsys):
    ids, labels, probs = labelled()
    a = write_run(tmp_path / "a", ids, labels, probs)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    code, out, _ = run_compare(capsys, a, b, "--json", tmp_path / "c.json",
                               "--markdown", tmp_path / "c.md", "--resamples", 200)  # fmt: skip
    assert code == 0 and "McNemar" in out
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["mcnemar"] == {"only_a_right": 0, "only_b_right": 0, "p": 1.0}
    for name in ("acc", "f1", "auroc"):
        assert report["metrics"][name]["difference"] == 0.0
        assert report["metrics"][name]["bootstrap_95"] == [0.0, 0.0]
    assert report["paired_test"] is None and report["vlogs"] == N
    assert "| accuracy |" in (tmp_path / "c.md").read_text()


def test_a_planted_difference_is_found(tmp_path, capsys):
    ids, labels, probs = labelled()
    a = write_run(tmp_path / "a", ids, labels, probs)
    # B: right about every vlog, confidently
    b = write_run(tmp_path / "b", ids, labels, (labels * 0.8 + 0.1).tolist())
    code, _, _ = run_compare(capsys, a, b, "--json", tmp_path / "c.json")
    assert code == 0
    report = json.loads((tmp_path / "c.json").read_text())
    decisions_a = torch.tensor(probs) >= 0.5
    wrong_a = int((decisions_a.long() != labels).sum())
    assert wrong_a > 10
    # every vlog A gets wrong, B gets right; none the other way: p = 2 * 0.5^wrong_a
    assert report["mcnemar"]["only_b_right"] == wrong_a
    assert report["mcnemar"]["only_a_right"] == 0
    assert report["mcnemar"]["p"] == pytest.approx(2 * 0.5**wrong_a)
    acc = report["metrics"]["acc"]
    assert acc["b"] == 1.0 and acc["difference"] == pytest.approx(wrong_a / N)
    low, high = acc["bootstrap_95"]
    assert 0 < low <= acc["difference"] <= high


def test_runs_on_other_test_vlogs_are_refused(tmp_path, capsys):
    ids, labels, probs = labelled()
    a = write_run(tmp_path / "a", ids, labels, probs)
    b = write_run(tmp_path / "b", ids[:-1] + ["other"], labels, probs)
    code, _, err = run_compare(capsys, a, b)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: {b / 'predictions.csv'}: its test vlogs differ")
    assert "(1 only there, 1 only here)" in line
    relabelled = write_run(tmp_path / "c", ids, 1 - labels, probs)
    code, _, err = run_compare(capsys, a, relabelled)
    assert code == 2 and "labels differ" in err
    code, _, err = run_compare(capsys, a, tmp_path / "missing")
    assert code == 2 and "missing: not found" in err


def fake_kfold_sweep(sweep: Path, probs_of, k: int = 4, select_on_test=(False,)) -> Path:
    """A k-fold sweep directory as a multirun leaves it: folds.csv, one job per fold
    (and protocol) with overrides, metrics.json and predictions.csv."""
    ids, labels, _ = labelled()
    folds = {vlog_id: i % k for i, vlog_id in enumerate(ids)}
    sweep.mkdir(parents=True)
    write_folds(sweep / "folds.csv", folds)
    num = 0
    for fold in range(k):
        for optimistic in select_on_test:
            job = sweep / str(num)
            (job / ".hydra").mkdir(parents=True)
            overrides = [f"kfold.fold={fold}", "sweep=kfold"]
            if len(select_on_test) > 1:
                overrides.append(f"kfold.select_on_test={optimistic}")  # as Hydra: True
            (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
            rows = [i for i, vlog_id in enumerate(ids) if folds[vlog_id] == fold]
            probs = probs_of(labels, optimistic)
            write_run(job, [ids[i] for i in rows], labels[rows], [probs[i] for i in rows])
            report = binary_metrics(torch.tensor([probs[i] for i in rows]), labels[rows])
            kfold = {"fold": fold, "k": k, "select_on_test": optimistic,
                     "protocol": OPTIMISTIC if optimistic else HONEST}  # fmt: skip
            (job / "metrics.json").write_text(json.dumps(
                {"metrics": report, "all_positive_baseline": {"acc": 0.5, "f1": 2 / 3},
                 "seed": 0, "kfold": kfold}))  # fmt: skip
            num += 1
    return sweep


def test_kfold_sweeps_pair_by_fold_with_a_test_over_folds(tmp_path, capsys):
    _, _, noisy = labelled()
    a = fake_kfold_sweep(tmp_path / "a", lambda labels, _: noisy)
    same = fake_kfold_sweep(tmp_path / "same", lambda labels, _: noisy)
    code, _, _ = run_compare(capsys, a, same, "--json", tmp_path / "same.json")
    report = json.loads((tmp_path / "same.json").read_text())
    assert code == 0 and report["paired_by"] == [f"fold {f}" for f in range(4)]
    assert report["paired_test"]["acc"] == {"mean_difference": 0.0, "p": 1.0}
    assert report["mcnemar"]["p"] == 1.0  # each vlog once over the folds
    better = fake_kfold_sweep(tmp_path / "better", lambda labels, _: (labels * 0.8 + 0.1).tolist())
    code, _, _ = run_compare(capsys, a, better, "--json", tmp_path / "better.json")
    test = json.loads((tmp_path / "better.json").read_text())["paired_test"]
    # B better on all 4 folds: of the 16 sign flips only all-plus and all-minus are as extreme
    assert test["over"] == "folds" and test["pairs"] == 4
    assert test["acc"]["mean_difference"] > 0 and test["acc"]["p"] == pytest.approx(2 / 16)
    # a single run does not pair with a sweep over folds
    run = write_run(tmp_path / "run", *labelled())
    code, _, err = run_compare(capsys, a, run)
    assert code == 2 and "compare runs on the same folds or seeds" in err


def test_kfold_summary_pools_out_of_fold_predictions_and_labels_the_optimistic_one(tmp_path):
    _, _, noisy = labelled()
    sweep = fake_kfold_sweep(
        tmp_path / "s",
        lambda labels, optimistic: (labels * 0.8 + 0.1).tolist() if optimistic else noisy,
        select_on_test=(False, True),
    )
    rows = write_summary(sweep)
    assert [len(r.jobs) for r in rows] == [4, 4]  # folds are not configurations
    with open(sweep / "summary.csv", newline="") as handle:
        table = {r["configuration"]: r for r in csv.DictReader(handle)}
    honest, optimistic = table["kfold.select_on_test=False"], table["kfold.select_on_test=True"]
    assert honest["protocol"] == HONEST and optimistic["protocol"] == OPTIMISTIC
    ids, labels, _ = labelled()
    pooled = binary_metrics(torch.tensor(noisy), labels)  # the folds together are every vlog once
    assert honest["pooled_vlogs"] == str(N) and honest["pooled_missing"] == "0"
    for name in ("acc", "f1", "weighted_f1", "auroc", "ece"):
        assert float(honest[f"pooled_{name}"]) == pytest.approx(pooled[name], abs=1e-4), name
    assert float(optimistic["pooled_acc"]) == 1.0
    markdown = (sweep / "summary.md").read_text()
    assert markdown.count("(optimistic: selected on the reported fold)") == 2  # both tables
    assert "## Out-of-fold predictions, pooled" in markdown and "mean ± sample standard " \
        "deviation over folds" in markdown  # fmt: skip
    with open(sweep / "oof_predictions_0.csv", newline="") as handle:
        oof = [r["id"] for r in csv.DictReader(handle)]
    assert sorted(oof) == sorted(ids)  # every vlog exactly once
    # a sweep of two configurations needs a selection to compare; with it, it compares
    with pytest.raises(ValueError, match="holds 2 configurations"):
        from dynmultidep.sweeps.compare import read_side

        read_side(sweep)
    assert len(read_side(sweep, "kfold.select_on_test=true").parts) == 4


def test_the_sign_flip_p_value_is_never_zero():
    from dynmultidep.evaluation.significance import sign_flip_test

    # 20 equal differences: no random sign assignment reaches the observed mean, yet
    # the observed assignment itself counts: p = 1 / (draws + 1)
    assert sign_flip_test([0.1] * 20, draws=999, seed=0) == pytest.approx(1 / 1000)
    # exact enumeration (n <= 16): both all-same-sign assignments reach it
    assert sign_flip_test([0.1] * 6) == pytest.approx(2 / 2**6)
    assert sign_flip_test([0.0] * 20, draws=99) == 1.0
