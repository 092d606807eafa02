"""Scaling out: evaluation folds sharded across DDP ranks and joined back, ranks
relaunched as the Hydra job, DDP (2 CPU processes) inside a multirun, submitit and
Optuna multiruns (the last three are slow: `make test-slow`)."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

from conftest import run_script, tiny_synthetic
from dynmultidep.data.sharding import shard
from dynmultidep.evaluation.predictions import Predictions, join_shards
from dynmultidep.tasks.run.distributed import LAUNCH_VARIABLES, config_flags, distributed_job


def predictions(ids: list[str]) -> Predictions:
    n = len(ids)
    return Predictions(
        ids=ids, genders=["f"] * n, probs=torch.arange(n, dtype=torch.float32) / 10,
        labels=torch.arange(n) % 2, gate=torch.rand(n, 2), expert_names=("audio", "video"),
    )  # fmt: skip


@pytest.mark.parametrize(("count", "world"), [(7, 2), (8, 2), (5, 3), (2, 3)])
def test_sharded_predictions_join_back_in_fold_order(count, world):
    whole = predictions([f"v{i}" for i in range(count)])
    index = list(range(count))
    parts = [
        whole.take(shard(index, rank, world)) if shard(index, rank, world) else None
        for rank in range(world)
    ]
    assert sum(len(p.ids) for p in parts if p) == count  # nothing evaluated twice
    joined = join_shards(parts)
    assert joined.ids == whole.ids
    assert torch.equal(joined.probs, whole.probs) and torch.equal(joined.gate, whole.gate)
    assert torch.equal(joined.labels, whole.labels)


def test_config_flags_keep_only_the_config_choice():
    argv = ["-m", "-cn", "train", "seed=0,1", "--config-path=../conf", "hydra.verbose=true"]
    assert config_flags(argv) == ["-cn", "train", "--config-path=../conf"]


def test_distributed_job_restores_the_launch_variables(monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "cluster-node")  # as a cluster manager sets it
    for name in LAUNCH_VARIABLES[1:]:
        monkeypatch.delenv(name, raising=False)
    with distributed_job():
        for name in LAUNCH_VARIABLES:  # as Lightning's launcher leaves them
            os.environ[name] = "1"
    assert os.environ["MASTER_ADDR"] == "cluster-node"
    assert not any(name in os.environ for name in LAUNCH_VARIABLES[1:])


def read_metrics(job) -> dict:
    return json.loads((job / "metrics.json").read_text())


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_inside_a_multirun(tmp_path):
    sweep, logs = tmp_path / "sweep", tmp_path / "logs"
    result = run_script("train", "-m", "trainer=ddp_cpu", "seed=0,1", "trainer.max_epochs=2",
                        f"hydra.sweep.dir={sweep}", f"paths.log_dir={logs}",
                        *tiny_synthetic(tmp_path), timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (logs / "train" / "runs").exists()  # no rank started a run of its own
    assert sorted(p.name for p in sweep.glob("*/.hydra")) == [".hydra", ".hydra"]
    for job in ("0", "1"):
        assert (sweep / job / "train_ddp_process_1.log").is_file()  # rank 1 ran in the job
    # rank 0's test report equals a single-process evaluation of the same checkpoint
    report = read_metrics(sweep / "0")
    assert report["vlogs"] == 6  # every test vlog, each once
    eval_dir = tmp_path / "eval"
    evaluated = run_script("eval", f"ckpt_path={report['checkpoint']}",
                           f"hydra.run.dir={eval_dir}", "trainer.accelerator=cpu")  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    single = read_metrics(tmp_path / "eval")
    assert report["metrics"] == single["metrics"]
    with (
        open(sweep / "0" / "predictions.csv") as a,
        open(tmp_path / "eval" / "predictions.csv") as b,
    ):
        assert list(csv.reader(a)) == list(csv.reader(b))
    # and the metrics Lightning logged, synchronised across the ranks, are the same
    with open(sweep / "0" / "csv" / "metrics.csv", newline="") as handle:
        logged = [row for row in csv.DictReader(handle) if row.get("test/acc")]
    assert float(logged[-1]["test/acc"]) == pytest.approx(report["metrics"]["acc"], abs=1e-6)
    assert float(logged[-1]["test/auroc"]) == pytest.approx(report["metrics"]["auroc"], abs=1e-6)


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_grid(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    result = run_script("train", "-m", "hydra/launcher=submitit_local", "seed=0,1",
                        "debug=fast", f"hydra.sweep.dir={sweep}", *tiny_synthetic(tmp_path),
                        timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (sweep / ".submitit").is_dir()
    assert {read_metrics(sweep / n)["seed"] for n in ("0", "1")} == {0, 1}
    with open(sweep / "summary.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["n_seeds"] == "2"


@pytest.mark.slow
def test_optuna_search_runs_trials_and_reports_the_best(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "sweep"
    result = run_script("train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
                        "debug=fast", f"hydra.sweep.dir={sweep}", *tiny_synthetic(tmp_path),
                        timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in best and "module.optimizer.lr" in best
    assert len(list(sweep.glob("*/metrics.json"))) == 2
