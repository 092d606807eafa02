"""The entry points as a user runs them: Hydra run directories, one-line errors,
the W&B logger offline."""

from __future__ import annotations

import json

import pytest

from conftest import compose_config, run_script, tiny_synthetic
from dynmultidep.tasks.train import train


def test_train_script_writes_a_run_directory_and_prints_the_test_table(tmp_path):
    result = run_script("train", "debug=fast", f"paths.log_dir={tmp_path}/logs",
                        *tiny_synthetic(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "debug=fast" in metrics["overrides"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "train.log").is_file()
    assert "test fold" in result.stdout and "all-positive baseline" in result.stdout
    assert (tmp_path / "corpus" / "labels.csv").is_file()  # the synthetic corpus was generated


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ckpt_path=/no/model.ckpt"], "error: /no/model.ckpt: checkpoint file not found"),
        ([], "error: ckpt_path: not given; pass ckpt_path="),
    ],
)  # fmt: skip
def test_eval_without_a_usable_checkpoint_fails_in_one_line(args, message, tmp_path):
    result = run_script("eval", *args, f"paths.log_dir={tmp_path}")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(message), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("metrics.json")) and not list(tmp_path.rglob("*.csv"))


def test_unreadable_checkpoint_fails_in_one_line(tmp_path):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    result = run_script("predict", f"ckpt_path={bad}", f"input={tmp_path}",
                        f"paths.log_dir={tmp_path}/logs")  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: {bad}: cannot be read as a checkpoint")
    )
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").rglob("*.csv"))


def test_gender_on_lmvd_is_refused_with_one_line(tmp_path):
    result = run_script("train", "dataset=lmvd", "dataset.train_gender=m",
                        f"paths.log_dir={tmp_path}")  # fmt: skip
    assert result.returncode == 2
    assert "lmvd has no gender labels" in result.stderr.strip().splitlines()[-1]


def test_every_logger_at_once_with_wandb_offline_without_login(tmp_path, monkeypatch):
    import wandb

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc credentials
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    out = tmp_path / "run"
    cfg = compose_config(
        "train",
        ["logger=many", "debug=fast", f"paths.output_dir={out}", *tiny_synthetic(tmp_path)],
    )
    train(cfg)
    assert wandb.run is None  # finished, so the next multirun job starts its own
    offline_runs = list((out / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert list(offline_runs[0].glob("*.wandb"))
    assert (out / "metrics.json").is_file() and (out / "csv" / "metrics.csv").is_file()
    events = list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and sum(e.stat().st_size for e in events) > 10_000  # scalars and figures


@pytest.mark.slow  # multiruns stay in make test through test_scale_grids and k-fold
def test_multirun_jobs_get_their_own_directories(tmp_path):
    result = run_script("train", "-m", "seed=0,1", "debug=fast", f"paths.log_dir={tmp_path}/logs",
                        *tiny_synthetic(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    seeds = {
        job.name: json.loads((job / "metrics.json").read_text())["seed"]
        for job in sweep_dir.iterdir()
        if job.is_dir() and not job.name.startswith(".")
    }
    assert seeds == {"0": 0, "1": 1}
    for job in ("0", "1"):
        assert (sweep_dir / job / "checkpoints" / "last.ckpt").is_file()
