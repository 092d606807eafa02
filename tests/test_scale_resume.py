"""Reproducibility and resuming: same seed -> same run; an interrupted run resumed in
its directory ends exactly where an uninterrupted one does; another config is refused."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import lightning as L
import pytest
import torch

from conftest import QUIET, TINY_MODEL, compose_config, run_script
from dynmultidep.errors import CheckpointError, FileError
from dynmultidep.tasks.callbacks.reproducibility import EpochSeeding, epoch_seed
from dynmultidep.tasks.run.loggers import AppendingCSVLogger, wandb_run_id
from dynmultidep.tasks.run.resume import config_differences, resume_argv
from dynmultidep.tasks.train import train


class InterruptOnce(L.Callback):
    """Raises at the start of epoch ``epoch`` unless ``marker`` exists (then creates it):
    the first run with it is interrupted, a rerun with the same config is not."""

    def __init__(self, marker: str, epoch: int = 1):
        self.marker, self.epoch = Path(marker), epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch and not self.marker.exists():
            self.marker.touch()
            raise RuntimeError("interrupted for the test")


@pytest.fixture
def run_cfg(synthetic_corpus, tmp_path):
    root, _ = synthetic_corpus("dvlog", "tiny")

    def make(out: Path, *extra: str):
        return compose_config(
            "train",
            [f"dataset.root={root}", "dataset.synthetic.preset=tiny", "dataset.batch_size=4",
             "trainer.max_epochs=3", f"paths.output_dir={out}", *TINY_MODEL, *QUIET, *extra],
        )  # fmt: skip

    return make


def fold_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


def last_weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_same_seed_and_config_give_identical_runs(run_cfg, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(run_cfg(a, "trainer.max_epochs=2"))
    train(run_cfg(b, "trainer.max_epochs=2"))
    assert fold_metrics(a) == fold_metrics(b)
    assert (a / "predictions.csv").read_text() == (b / "predictions.csv").read_text()
    weights_a, weights_b = last_weights(a), last_weights(b)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_a_resumed_run_ends_like_an_uninterrupted_one(run_cfg, tmp_path):
    marker = tmp_path / "interrupted"
    interrupt = [
        f"+callbacks.interrupt._target_={__name__}.InterruptOnce",
        f"+callbacks.interrupt.marker={marker}",
    ]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    marker.touch()  # the reference run is not interrupted
    train(run_cfg(whole, *interrupt))
    marker.unlink()
    with pytest.raises(RuntimeError, match="interrupted for the test"):
        train(run_cfg(resumed, *interrupt))
    assert not (resumed / "metrics.json").exists()
    assert torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    train(run_cfg(resumed, *interrupt))  # the same command again: continues from last.ckpt
    report = json.loads((resumed / "metrics.json").read_text())
    assert report["resumed_from"] == str(resumed / "checkpoints" / "last.ckpt")
    assert fold_metrics(resumed) == fold_metrics(whole)
    weights_whole, weights_resumed = last_weights(whole), last_weights(resumed)
    assert all(torch.equal(weights_whole[k], weights_resumed[k]) for k in weights_whole)
    # the CSV log holds the epoch before the interruption and those after it
    with open(resumed / "csv" / "metrics.csv", newline="") as handle:
        epochs = {row["epoch"] for row in csv.DictReader(handle) if row.get("val/acc")}
    assert epochs == {"0", "1", "2"}


def test_resuming_under_another_config_is_refused(run_cfg, tmp_path):
    out = tmp_path / "run"
    train(run_cfg(out, "trainer.max_epochs=1"))
    (out / "metrics.json").unlink()  # as if interrupted before testing
    with pytest.raises(CheckpointError, match=r"model\.d_state: 4 -> 8") as err:
        train(run_cfg(out, "trainer.max_epochs=1", "model.d_state=8"))
    assert str(out / "checkpoints" / "last.ckpt") in str(err.value)
    assert not (out / "metrics.json").exists()


def test_a_finished_run_is_skipped(run_cfg, tmp_path):
    out = tmp_path / "run"
    value = train(run_cfg(out, "trainer.max_epochs=1"))
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert train(run_cfg(out, "trainer.max_epochs=1")) == value
    assert (out / "metrics.json").stat().st_mtime_ns == stamp


def test_ckpt_path_last_needs_a_last_checkpoint(run_cfg, tmp_path):
    with pytest.raises(CheckpointError, match="no last checkpoint to resume from"):
        train(run_cfg(tmp_path / "new", "ckpt_path=last"))


def test_resume_argument_reapplies_the_run_overrides(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(
        "- dataset=lmvd\n- model.d_state=8\n- +trainer.limit_train_batches=2\n- resume=old\n"
    )
    argv = resume_argv(["train.py", f"resume={run_dir}", "model.d_state=4"])
    assert argv == [
        "train.py", "dataset=lmvd", "+trainer.limit_train_batches=2", f"resume={run_dir}",
        "model.d_state=4", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    assert resume_argv(["train.py", "seed=1"]) == ["train.py", "seed=1"]
    with pytest.raises(FileError, match="not a run directory"):
        resume_argv(["train.py", f"resume={tmp_path / 'nothing'}"])
    with pytest.raises(FileError, match="hydra.sweep.dir"):
        resume_argv(["train.py", "-m", f"resume={run_dir}"])


@pytest.mark.slow  # three runs of src/train.py (~30 s); resuming is tested in-process above
def test_resume_from_the_command_line_skips_a_finished_run(tmp_path):
    """src/train.py resume=<dir> runs in <dir> with its overrides (here: finds it finished)."""
    logs = tmp_path / "logs"
    first = run_script("train", "debug=fast", "dataset.synthetic.preset=tiny",
                       f"dataset.root={tmp_path}/corpus", f"paths.log_dir={logs}",
                       *TINY_MODEL, *QUIET)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    (run_dir,) = (logs / "train" / "runs").iterdir()
    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    again = run_script("train", f"resume={run_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "has finished" in again.stdout + again.stderr
    assert list((logs / "train" / "runs").iterdir()) == [run_dir]
    assert (run_dir / "metrics.json").stat().st_mtime_ns == stamp
    missing = run_script("train", f"resume={tmp_path / 'nowhere'}")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error: ")


def test_config_differences_name_every_changed_key():
    saved = {"seed": 0, "model": {"d_state": 4, "experts": ["a", "v"]}, "paths": {"x": 1}}
    current = {"seed": 1, "model": {"d_state": 4, "experts": ["a"], "new": 2}, "paths": {"x": 2}}
    assert config_differences(saved, current) == [
        "model.experts: ['a', 'v'] -> ['a']",
        "model.new: <absent> -> 2",
        "seed: 0 -> 1",
    ]


def test_epoch_seeding_depends_on_seed_epoch_and_rank_only():
    class Trainer:
        current_epoch, global_rank = 3, 0

    seeding = EpochSeeding(seed=7)
    seeding.on_train_epoch_start(Trainer(), None)
    first = torch.rand(4)
    torch.rand(100)  # whatever ran in between
    seeding.on_train_epoch_start(Trainer(), None)
    assert torch.equal(torch.rand(4), first)
    seeds = {epoch_seed(7, 3, 0), epoch_seed(7, 4, 0), epoch_seed(7, 3, 1), epoch_seed(8, 3, 0)}
    assert len(seeds) == 4


def test_csv_logger_appends_to_an_earlier_runs_metrics(tmp_path):
    first = AppendingCSVLogger(tmp_path, name="csv", version="")
    first.log_metrics({"val/acc": 0.5}, step=0)
    first.save()
    second = AppendingCSVLogger(tmp_path, name="csv", version="")
    second.log_metrics({"val/acc": 0.75, "val/f1": 0.5}, step=1)
    second.save()
    with open(tmp_path / "csv" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["step"], r["val/acc"], r["val/f1"]) for r in rows] == [
        ("0", "0.5", ""),
        ("1", "0.75", "0.5"),
    ]


def test_wandb_run_id_is_kept_per_run_directory(tmp_path):
    run_id = wandb_run_id(tmp_path)
    assert wandb_run_id(tmp_path) == run_id
    assert wandb_run_id(tmp_path / "other") != run_id
    assert os.path.isfile(tmp_path / "wandb_run_id")
