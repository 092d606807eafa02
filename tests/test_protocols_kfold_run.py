"""A k-fold multirun end to end (2 folds, tuned threshold, tiny corpus): folds.csv
partitions the corpus, each job validates outside its held-out fold, keeps its tuned
threshold in the checkpoint, and the pooled out-of-fold predictions cover every vlog
once; eval.py of a job's checkpoint tests the job's own fold."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from conftest import QUIET, compose_config, run_script, tiny_synthetic
from dynmultidep.protocols.kfold import HONEST, read_folds
from dynmultidep.tasks.evaluate import evaluate


def read_csv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # a real multirun of several training jobs (20-30 s); the sweep
# callback's checks run by default in the refusal tests
def test_kfold_multirun_end_to_end(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_script("train", "-m", "sweep=kfold", "kfold.k=2", "kfold.valid_share=0.3",
                        "module.threshold=tune", "debug=fast", f"hydra.sweep.dir={sweep}",
                        *tiny_synthetic(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    corpus = {r["index"]: r for r in read_csv(tmp_path / "corpus" / "labels.csv")}
    folds = read_folds(sweep / "folds.csv")
    assert set(folds) == set(corpus) and set(folds.values()) == {0, 1}
    for fold in (0, 1):
        job = sweep / str(fold)
        roles = {}
        for row in read_csv(job / "split.csv"):
            roles.setdefault(row["role"], set()).add(row["id"])
        assert roles["test"] == {i for i, f in folds.items() if f == fold}
        assert not roles["valid"] & roles["test"] and not roles["train"] & roles["test"]
        assert not roles["train"] & roles["valid"]
        assert roles["train"] | roles["valid"] == {i for i, f in folds.items() if f != fold}
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["kfold"]["fold"] == fold and metrics["kfold"]["protocol"] == HONEST
        assert metrics["kfold"]["select_on_test"] is False
        checkpoint = torch.load(metrics["checkpoint"], map_location="cpu", weights_only=True)
        tuned = metrics["tuned"]["threshold"]
        assert checkpoint["decision_threshold"]["value"] == pytest.approx(tuned)
        predictions = read_csv(job / "predictions.csv")
        assert {r["id"] for r in predictions} == roles["test"]
        for r in predictions:
            assert r["prediction"] == str(int(float(r["probability"]) >= 0.5))
            assert r["prediction_tuned"] == str(int(float(r["probability"]) >= tuned))
        assert (job / "test_reliability.png").stat().st_size > 5_000
    oof = read_csv(sweep / "oof_predictions.csv")
    assert sorted(r["id"] for r in oof) == sorted(corpus)  # every vlog exactly once
    right = sum(r["prediction"] == r["label"] for r in oof)
    (row,) = read_csv(sweep / "summary.csv")
    assert row["protocol"] == HONEST and row["n_seeds"] == "2"
    assert float(row["pooled_acc"]) == pytest.approx(right / len(oof), abs=1e-4)
    summary = (sweep / "summary.md").read_text()
    assert "## Out-of-fold predictions, pooled" in summary and "optimistic" not in summary

    # eval.py on fold 1's checkpoint evaluates fold 1's held-out vlogs, as training did
    job = sweep / "1"
    trained = json.loads((job / "metrics.json").read_text())
    cfg = compose_config("eval", [f"ckpt_path={trained['checkpoint']}",
                                  f"paths.output_dir={tmp_path / 'eval'}", *QUIET[2:],
                                  "callbacks.rich_progress_bar=null"])  # fmt: skip
    payload = evaluate(cfg)
    assert payload["vlogs"] == trained["vlogs"]
    assert payload["metrics"] == pytest.approx(trained["metrics"], abs=1e-6)
    assert payload["tuned"]["threshold"] == pytest.approx(tuned)


def test_more_folds_than_a_class_has_vlogs_are_refused_before_any_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_script("train", "-m", "sweep=kfold", "kfold.k=12", f"hydra.sweep.dir={sweep}",
                        *tiny_synthetic(tmp_path)[:2])  # fmt: skip
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    expected = "error: kfold.k: 12 folds need at least 12 normal vlogs in the pool, it has 11"
    assert last.startswith(expected)
    assert not list(sweep.glob("*/.hydra")) and not (sweep / "folds.csv").exists()
