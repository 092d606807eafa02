"""Train -> evaluate -> predict on tiny synthetic corpora in both layouts,
through the real configs (`dataset=dvlog` / `dataset=lmvd` pointed at corpora
in the released layouts)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from conftest import QUIET, TINY_MODEL, compose_config
from dynmultidep.data import get_corpus
from dynmultidep.errors import CheckpointError
from dynmultidep.tasks.checkpoint import classifier_from_checkpoint, read_checkpoint
from dynmultidep.tasks.evaluate import evaluate
from dynmultidep.tasks.predict import predict
from dynmultidep.tasks.train import train

LAYOUTS = {"dvlog": "dvlog", "lmvd": "lmvd"}  # dataset config -> synthetic layout


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def trained(request, synthetic_corpus, tmp_path_factory):
    """One short training run per corpus layout: (dataset name, corpus root, run dir, value)."""
    dataset = request.param
    root, _ = synthetic_corpus(LAYOUTS[dataset], "tiny")
    out = tmp_path_factory.mktemp(f"train_{dataset}")
    cfg = compose_config(
        "train",
        [f"dataset={dataset}", f"dataset.root={root}", "dataset.batch_size=8",
         "dataset.max_tokens=null", "trainer.max_epochs=2", f"paths.output_dir={out}",
         *TINY_MODEL, *QUIET],
    )  # fmt: skip
    value = train(cfg)
    return dataset, root, out, value


def test_training_run_writes_its_outputs(trained):
    dataset, root, out, value = trained
    for name in ("metrics.json", "predictions.csv", "config_tree.log", "checkpoints/last.ckpt",
                 "test_confusion_matrix.png", "test_roc_curve.png", "test_gate_weights.png",
                 "csv/metrics.csv"):  # fmt: skip
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "train" and metrics["fold"] == "test"
    assert metrics["dataset"]["corpus"] == dataset and metrics["dataset"]["root"] == str(root)
    assert Path(metrics["checkpoint"]).is_file() and metrics["best_epoch"] in (0, 1)
    assert metrics["monitor"] == "val/macro_f1" and value == pytest.approx(metrics["best_score"])
    assert metrics["seed"] == 0 and "torch" in metrics["versions"]
    # the kernels that ran: the fused CPU scan and convolution, no optional package tried
    assert metrics["kernels"] == {"conv": ["fused"], "scan": ["fused"], "fallbacks": {}}
    assert "kernel shape" in metrics["kernel_shape"]  # the CPU and the shape they took there
    assert metrics["overrides"] == []  # composed outside a Hydra job; see test_shell_cli
    baseline = metrics["all_positive_baseline"]
    prevalence = metrics["depressed"] / metrics["vlogs"]
    assert baseline["acc"] == pytest.approx(prevalence) and baseline["recall"] == 1.0
    for name in ("acc", "f1"):
        low, high = metrics["bootstrap_95"][name]
        assert 0 <= low <= high <= 1
    with open(out / "csv" / "metrics.csv", newline="") as handle:
        logged = set(next(csv.reader(handle)))
    for split in ("train", "val"):
        assert {f"{split}/{m}" for m in ("acc", "precision", "recall", "f1", "macro_f1", "auroc",
                                         "avg4")} <= logged  # fmt: skip
        for expert in ("audio", "video"):
            assert {f"{split}/gate_weight_{expert}", f"{split}/gate_routed_{expert}"} <= logged
    assert {"train/lr", "train/loss_epoch", "val/loss", "test/avg4"} <= logged
    assert {"perf/train_epoch_s", "perf/val_epoch_s"} <= logged  # EpochResources
    assert "perf/peak_memory_mib" not in logged  # CUDA only


def test_metrics_json_agrees_with_predictions_csv(trained):
    """Counts from the CSV (independent of torchmetrics) give the reported numbers."""
    _, _, out, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    rows = read_csv(out / "predictions.csv")
    assert len(rows) == metrics["vlogs"]
    assert list(rows[0]) == ["id", "gender", "label", "probability", "prediction",
                             "gate_audio", "gate_video", "gate_fused", "gate_stats",
                             "relied_on"]  # fmt: skip
    tp = sum(r["label"] == "1" and r["prediction"] == "1" for r in rows)
    fp = sum(r["label"] == "0" and r["prediction"] == "1" for r in rows)
    fn = sum(r["label"] == "1" and r["prediction"] == "0" for r in rows)
    tn = len(rows) - tp - fp - fn
    m = metrics["metrics"]
    assert m["acc"] == pytest.approx((tp + tn) / len(rows), abs=1e-6)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    assert m["precision"] == pytest.approx(precision, abs=1e-6)
    assert m["recall"] == pytest.approx(recall, abs=1e-6)
    for r in rows:
        assert r["prediction"] == str(int(float(r["probability"]) >= 0.5))
        weights = {e: float(r[f"gate_{e}"]) for e in ("audio", "video", "fused")}
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
        assert r["relied_on"] == max(weights, key=weights.get)


def test_checkpoint_loads_weights_only_and_rebuilds_the_model(trained):
    _, _, out, _ = trained
    path = out / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 1  # last.ckpt is the final epoch's (max_epochs=2)
    assert "standardizer" in checkpoint["DepressionDataModule"]
    assert checkpoint["run_config"]["dataset"]["root"]
    module = classifier_from_checkpoint(read_checkpoint(path), path)
    assert not module.training and module.hparams.model["d_model"] == 16
    loaded = dict(module.state_dict())
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(loaded[key], value), key


def test_eval_reproduces_the_training_test_metrics_exactly(trained, tmp_path):
    _, _, out, _ = trained
    trained_metrics = json.loads((out / "metrics.json").read_text())
    cfg = compose_config(
        "eval",
        [f"ckpt_path={trained_metrics['checkpoint']}", f"paths.output_dir={tmp_path}", *QUIET[2:],
         "callbacks.rich_progress_bar=null"],
    )  # fmt: skip
    payload = evaluate(cfg)
    assert payload["task"] == "eval" and payload["fold"] == "test"
    assert payload["metrics"] == trained_metrics["metrics"]
    assert payload["bootstrap_95"] == trained_metrics["bootstrap_95"]
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == payload["metrics"]
    assert read_csv(tmp_path / "predictions.csv") == read_csv(out / "predictions.csv")


def test_eval_on_another_fold(trained, tmp_path):
    _, _, out, _ = trained
    ckpt = json.loads((out / "metrics.json").read_text())["checkpoint"]
    cfg = compose_config(
        "eval", [f"ckpt_path={ckpt}", "fold=valid", f"paths.output_dir={tmp_path}", *QUIET[2:],
                 "callbacks.rich_progress_bar=null", "~logger"],
    )  # fmt: skip
    payload = evaluate(cfg)
    assert payload["fold"] == "valid"
    with pytest.raises(ValueError, match="fold must be one of"):
        evaluate(compose_config("eval", [f"ckpt_path={ckpt}", "fold=dev",
                                         f"paths.output_dir={tmp_path}"]))  # fmt: skip


def test_predict_scores_unlabelled_vlogs_like_the_test_run(trained, tmp_path):
    dataset, root, out, _ = trained
    ckpt = json.loads((out / "metrics.json").read_text())["checkpoint"]
    expected = {r["id"]: r for r in read_csv(out / "predictions.csv")}
    cfg = compose_config(
        "predict", [f"ckpt_path={ckpt}", f"input={root}", f"output={tmp_path}/p.csv",
                    f"paths.output_dir={tmp_path}", *QUIET[2:]],
    )  # fmt: skip
    predict(cfg)
    rows = {r["id"]: r for r in read_csv(tmp_path / "p.csv")}
    assert "label" not in next(iter(rows.values()))
    assert set(expected) <= set(rows)  # every vlog of the corpus is scored, test fold included
    for vlog_id, row in expected.items():
        assert float(rows[vlog_id]["probability"]) == pytest.approx(
            float(row["probability"]), abs=1e-5
        )
        assert rows[vlog_id]["relied_on"] == row["relied_on"]
    # one vlog, named by one of its feature files
    one = next(iter(expected))
    file = get_corpus(dataset).audio_path(root, one)
    predict(compose_config("predict", [f"ckpt_path={ckpt}", f"input={file}",
                                       f"output={tmp_path}/one.csv", f"paths.output_dir={tmp_path}",
                                       *QUIET[2:]]))  # fmt: skip
    (single,) = read_csv(tmp_path / "one.csv")
    assert single["id"] == one


def test_eval_refuses_a_corpus_whose_widths_the_model_does_not_take(trained, tmp_path):
    dataset, _, out, _ = trained
    ckpt = json.loads((out / "metrics.json").read_text())["checkpoint"]
    other = "lmvd" if dataset == "dvlog" else "dvlog"
    cfg = compose_config("eval", [f"ckpt_path={ckpt}", f"dataset={other}",
                                  f"paths.output_dir={tmp_path}"])  # fmt: skip
    with pytest.raises(CheckpointError, match="audio_dim="):
        evaluate(cfg)
    assert not (tmp_path / "metrics.json").exists()


def test_evaluation_and_prediction_run_under_inference_mode(trained, tmp_path, monkeypatch):
    from dynmultidep.tasks.module import DepressionClassifier

    dataset, root, out, _ = trained
    ckpt = json.loads((out / "metrics.json").read_text())["checkpoint"]
    modes = []
    forward = DepressionClassifier.forward

    def recording(self, batch):
        modes.append((self.training, torch.is_inference_mode_enabled()))
        return forward(self, batch)

    monkeypatch.setattr(DepressionClassifier, "forward", recording)
    eval_extra = ["fold=valid", "callbacks.rich_progress_bar=null", "~logger"]
    for task, extra in ((evaluate, eval_extra), (predict, [f"input={root}"])):
        cfg = compose_config(
            "eval" if task is evaluate else "predict",
            [f"ckpt_path={ckpt}", f"paths.output_dir={tmp_path}", *extra, *QUIET[2:]],
        )
        task(cfg)
    assert modes and all(mode == (False, True) for mode in modes)
