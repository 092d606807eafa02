"""Training options of the LightningModule: class weighting, bf16, gate annealing."""

from __future__ import annotations

import json

import lightning as L
import pytest
from hydra.utils import instantiate

from conftest import QUIET, TINY_MODEL, compose_config
from dynmultidep.tasks.train import train


@pytest.fixture
def tiny_cfg(synthetic_corpus, tmp_path):
    root, _ = synthetic_corpus("dvlog", "tiny")

    def make(*overrides):
        return compose_config(
            "train",
            ["dataset=dvlog", f"dataset.root={root}", "dataset.batch_size=8", "debug=fast",
             f"paths.output_dir={tmp_path}", "~logger", *TINY_MODEL, *QUIET, *overrides],
        )  # fmt: skip

    return make


def test_pos_weight_comes_from_the_training_fold(tiny_cfg, tmp_path):
    cfg = tiny_cfg("module.pos_weight=true")
    datamodule = instantiate(cfg.dataset)
    module = instantiate(cfg.module, model=cfg.model, _recursive_=False)
    trainer = L.Trainer(fast_dev_run=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=False)  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    labels = [v.label for v in datamodule.fold("train")]
    expected = (len(labels) - sum(labels)) / sum(labels)
    assert float(module.pos_weight) == pytest.approx(expected)
    # the weight shapes the loss only: a checkpoint of such a run rebuilds strictly
    from dynmultidep.tasks.checkpoint import classifier_from_checkpoint, read_checkpoint

    trainer.save_checkpoint(tmp_path / "pw.ckpt")
    rebuilt = classifier_from_checkpoint(
        read_checkpoint(tmp_path / "pw.ckpt"), tmp_path / "pw.ckpt"
    )
    assert rebuilt.hparams.pos_weight is True and rebuilt.pos_weight is None


def test_bf16_mixed_training_on_cpu(tiny_cfg, tmp_path):
    train(tiny_cfg("trainer=bf16"))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["acc"] <= 1.0


def test_gate_annealing_callback_in_a_run(tiny_cfg, tmp_path):
    from dynmultidep.tasks.checkpoint import classifier_from_checkpoint, read_checkpoint

    train(tiny_cfg("callbacks=[default,gate_annealing]", "callbacks.rich_progress_bar=null",
                   "callbacks.model_summary=null", "trainer.max_epochs=3", "model.temp=2.0",
                   "callbacks.gate_annealing.temp_min=0.5"))  # fmt: skip
    last = tmp_path / "checkpoints" / "last.ckpt"
    module = classifier_from_checkpoint(read_checkpoint(last), last)
    assert module.net.gate.temp == pytest.approx(0.5)  # the checkpoint holds the annealed value


def test_synthetic_lmvd_config_generates_its_corpus_and_trains(tmp_path):
    root = tmp_path / "corpus"
    cfg = compose_config(
        "train",
        ["dataset=synthetic_lmvd", "dataset.synthetic.preset=tiny", f"dataset.root={root}",
         "dataset.batch_size=8", "debug=fast", f"paths.output_dir={tmp_path}/run", "~logger",
         *TINY_MODEL, *QUIET],
    )  # fmt: skip
    train(cfg)
    assert (root / "audio").is_dir() and (root / "visual").is_dir()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"]["corpus"] == "lmvd" and metrics["dataset"]["test_gender"] == "both"
