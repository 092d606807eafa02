"""The DataModule: batch contract, statistics, crops, caching, configs, Lightning."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import HandVlog, write_dvlog
from dynmultidep.data import DepressionDataModule
from dynmultidep.errors import DataError

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_batch_contract(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog", "small")
    dm = DepressionDataModule(root=root, batch_size=8)
    dm.setup("fit")
    for batch in dm.train_dataloader():
        b = len(batch["id"])
        steps = int(batch["lengths"].max())
        assert batch["audio"].shape == (b, steps, 25) and batch["audio"].dtype == torch.float32
        assert batch["video"].shape == (b, steps, 136) and batch["video"].dtype == torch.float32
        assert batch["lengths"].dtype == batch["label"].dtype == torch.int64
        assert batch["label"].shape == (b,) and set(batch["label"].tolist()) <= {0, 1}
        assert all(isinstance(i, str) for i in batch["id"])
        assert set(batch["gender"]) <= {"m", "f"}
        for row, length in enumerate(batch["lengths"].tolist()):
            assert (batch["audio"][row, length:] == 0).all()
            assert (batch["video"][row, length:] == 0).all()
    vlogs = {v.id: v for v in dm.fold("train")}
    assert all(batch["lengths"][r] == vlogs[i].length for r, i in enumerate(batch["id"]))


def test_evaluation_batches_ascend_in_length(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog", "small")
    dm = DepressionDataModule(root=root, eval_batch_size=5)
    dm.setup()
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        lengths = torch.cat([b["lengths"] for b in loader]).tolist()
        assert lengths == sorted(lengths)
        assert len(lengths) == len(loader.dataset.vlogs)


def test_standardisation_uses_training_statistics_only(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog", "small")
    dm = DepressionDataModule(root=root, batch_size=4)
    dm.setup()
    dm.train_dataloader()
    train_rows = np.concatenate([v.video for v in dm.fold("train")]).astype(np.float64)
    mean, std = dm.standardizer.stats["video"]
    np.testing.assert_allclose(mean.numpy(), train_rows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), train_rows.std(0), rtol=1e-4)
    test_rows = np.concatenate([v.video for v in dm.fold("test")])
    assert not np.allclose(mean.numpy(), test_rows.mean(0), rtol=1e-3)

    batch = next(iter(dm.test_dataloader()))
    vlog = next(v for v in dm.fold("test") if v.id == batch["id"][0])
    expected = (torch.from_numpy(vlog.video) - mean) / std
    torch.testing.assert_close(batch["video"][0, : vlog.length], expected)


def test_statistics_travel_in_the_state_dict(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog", "small")
    trained = DepressionDataModule(root=root)
    trained.train_dataloader()
    state = trained.state_dict()

    evaluator = DepressionDataModule(root=root, train_gender="m")  # would fit other statistics
    evaluator.load_state_dict(state)
    a = next(iter(trained.test_dataloader()))
    b = next(iter(evaluator.test_dataloader()))
    torch.testing.assert_close(a["audio"], b["audio"])
    assert "train" not in evaluator._folds  # never loaded: nothing to fit


def test_random_crops_are_extra_items_of_the_same_vlogs(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog", "small")
    dm = DepressionDataModule(root=root, crop_attempts=5, crop_min_length=60, seed=3)
    a, b = dm.train_dataset(), dm.train_dataset()
    n = len(dm.fold("train"))
    assert len(a) > n and a.segments == b.segments
    assert (
        DepressionDataModule(root=root, crop_attempts=5, crop_min_length=60, seed=4)
        .train_dataset()
        .segments
        != a.segments
    )
    for index, start, stop in a.segments[n:]:
        vlog = a.vlogs[index]
        assert 60 <= stop - start < vlog.length and 0 <= start and stop <= vlog.length
    item = a[n]
    index, start, stop = a.segments[n]
    np.testing.assert_array_equal(item["audio"], a.vlogs[index].audio[start:stop])
    assert item["label"] == a.vlogs[index].label


def test_files_are_read_once(synthetic_corpus, monkeypatch):
    root, plan = synthetic_corpus("dvlog", "small")
    dm = DepressionDataModule(root=root, batch_size=16)
    calls = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: calls.append(a[0]) or real_load(*a, **k))
    dm.setup("fit")
    dm.setup("test")
    after_setup = len(calls)
    for _ in range(3):
        for _ in dm.train_dataloader():
            pass
        for _ in dm.val_dataloader():
            pass
    assert after_setup == 2 * len(plan) and len(calls) == after_setup


def test_synthetic_corpus_is_generated_on_first_use(tmp_path):
    spec = {"preset": "tiny", "seed": 2}
    a = DepressionDataModule(root=tmp_path / "a", synthetic=spec)
    a.prepare_data()
    a.setup()
    b = DepressionDataModule(root=tmp_path / "b", synthetic=spec)
    b.setup()  # without prepare_data, as outside a Trainer
    assert (tmp_path / "a" / "labels.csv").read_bytes() == (
        tmp_path / "b" / "labels.csv"
    ).read_bytes()
    with pytest.raises(
        DataError, match="synthetic.json: this synthetic corpus was generated with seed=2"
    ):
        DepressionDataModule(
            root=tmp_path / "a", synthetic={"preset": "tiny", "seed": 3}
        ).prepare_data()


@pytest.mark.parametrize(("name", "audio_dim"), [("synthetic", 25), ("synthetic_lmvd", 128)])
def test_dataset_configs_instantiate(tmp_path, name, audio_dim):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            overrides=[
                f"+dataset={name}",
                "+paths=default",
                f"paths.data_dir={tmp_path}",
                "dataset.synthetic.preset=tiny",
                "dataset.batch_size=4",
            ],
        )
    dm = instantiate(cfg.dataset)
    assert isinstance(dm, DepressionDataModule)
    assert dm.audio_dim == cfg.dataset.audio_dim == audio_dim
    folder = {"synthetic": "dvlog_bursts_tiny_seed0", "synthetic_lmvd": "lmvd_tiny_seed0"}[name]
    assert dm.root == tmp_path / "synthetic" / folder
    dm.prepare_data()
    dm.setup()
    assert next(iter(dm.train_dataloader()))["audio"].shape[-1] == audio_dim


@pytest.mark.parametrize("name", ["dvlog", "lmvd"])
def test_real_corpus_configs_point_at_data_dir(tmp_path, name):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            overrides=[f"+dataset={name}", "+paths=default", f"paths.data_dir={tmp_path}"]
        )
    dm = instantiate(cfg.dataset)
    assert dm.root == tmp_path / name and dm.synthetic is None and dm.max_tokens == 32768
    with pytest.raises(DataError, match="labels.csv: file not found; set dataset.root"):
        dm.setup()


class MeanPoolClassifier(L.LightningModule):
    """Just enough model to drive the DataModule through a Trainer."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(25 + 136, 1)
        self.train_batches = 0

    def forward(self, batch):
        x = torch.cat([batch["audio"], batch["video"]], dim=-1).sum(1)
        return self.head(x / batch["lengths"][:, None]).squeeze(-1)

    def training_step(self, batch, _):
        self.train_batches += 1
        return torch.nn.functional.binary_cross_entropy_with_logits(
            self(batch), batch["label"].float()
        )

    def test_step(self, batch, _):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            self(batch), batch["label"].float()
        )
        self.log("test_loss", loss, batch_size=len(batch["id"]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_lightning_runs_whole_epochs_and_checkpoints_the_statistics(tmp_path):
    folds = ["train"] * 9 + ["valid", "test", "test"]
    vlogs = [
        HandVlog(str(i), gender="mf"[i % 2], fold=fold, audio_steps=5 + i, video_steps=5 + i)
        for i, fold in enumerate(folds)
    ]
    root = write_dvlog(tmp_path / "corpus", vlogs)
    dm = DepressionDataModule(root=root, batch_size=2)
    model = MeanPoolClassifier()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    assert model.train_batches == 2 * 5  # 9 vlogs in batches of 2, both epochs whole
    ckpt = torch.load(
        trainer.checkpoint_callback.best_model_path or next(tmp_path.rglob("*.ckpt")),
        weights_only=True,
    )
    saved = ckpt["DepressionDataModule"]["standardizer"]
    torch.testing.assert_close(saved["audio_mean"], dm.standardizer.stats["audio"][0])

    # Fitting here would see only the male training vlogs: equal statistics
    # prove that evaluation took them from the checkpoint.
    fresh = DepressionDataModule(root=root, batch_size=2, train_gender="m", test_gender="both")
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.test(
        MeanPoolClassifier(),
        datamodule=fresh,
        ckpt_path=next(tmp_path.rglob("*.ckpt")),
        weights_only=True,
    )
    torch.testing.assert_close(
        fresh.standardizer.stats["audio"][1], dm.standardizer.stats["audio"][1]
    )
    own_fit = DepressionDataModule(root=root, train_gender="m")
    own_fit.train_dataloader()
    assert not torch.allclose(
        own_fit.standardizer.stats["audio"][1], dm.standardizer.stats["audio"][1]
    )


def test_worker_processes_give_the_same_batches(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog", "small")
    in_process = DepressionDataModule(root=root, batch_size=16, seed=5)
    with_workers = DepressionDataModule(root=root, batch_size=16, seed=5, num_workers=2)
    for a, b in zip(in_process.train_dataloader(), with_workers.train_dataloader(), strict=True):
        assert a["id"] == b["id"]
        torch.testing.assert_close(a["video"], b["video"])
