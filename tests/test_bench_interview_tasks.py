"""The interview-tasks benchmark section (``scripts/bench.py --sections interview_tasks``)
at its smallest plan: both tasks on both tiny twins, one seed, one epoch."""

from __future__ import annotations

from pathlib import Path

from conftest import CONF_DIR
from dynmultidep.bench.interview_tasks import (
    PLANS,
    TaskPlan,
    bench_interview_tasks,
    plan_jobs,
    tables,
)


def test_tiny_plan_rows_hold_the_metrics_and_their_baselines(tmp_path):
    notes = []
    result = bench_interview_tasks(CONF_DIR, tmp_path, plan="tiny", on_row=notes.append)
    plan = PLANS["tiny"]
    assert (plan.preset, plan.seeds, plan.epochs) == ("tiny", (0,), 1)
    rows = result["rows"]
    assert {(r["corpus"], r["task"]) for r in rows} == {
        (c, t) for c in ("daic_woz", "edaic") for t in ("regression", "binary")
    }
    assert len(notes) == len(rows) == 4
    for row in rows:
        assert row["error"] is None, row["error"]
        assert row["seed"] == 0 and row["preset"] == row["twin"] == "tiny"
        if row["task"] == "regression":
            assert set(row["test"]) == set(row["val"]) == {"rmse", "mae", "ccc"}
            assert set(row["baselines"]) == set(row["val_baselines"]) == {
                "train_mean", "train_median"
            }  # fmt: skip
            assert {"rmse", "mae"} <= set(row["baselines"]["train_mean"])
            assert {"rmse", "mae"} <= set(row["val_baselines"]["train_mean"])
        else:
            assert set(row["test"]) == set(row["val"]) == {"acc", "macro_f1", "auroc"}
            assert set(row["baselines"]) == set(row["val_baselines"]) == {"majority"}
            assert set(row["baselines"]["majority"]) == {"acc", "macro_f1"}
    summary = {(s["corpus"], s["task"]): s for s in result["summary"]}
    assert {"test_rmse", "test_rmse_std", "train_mean_rmse", "val_train_mean_rmse"} <= set(
        summary["edaic", "regression"]
    )
    assert {"test_macro_f1", "majority_acc", "majority_macro_f1"} <= set(
        summary["daic_woz", "binary"]
    )
    assert len(result["targets"]) == 4
    assert all({"target", "measured", "met"} == set(t) for t in result["targets"])
    test_tables = tables(result)
    assert [len(rows) for _, _, rows in test_tables] == [2, 2]
    assert len(tables(result, fold="val")) == 2


def test_twin_sizes_are_crossed_and_each_job_asks_for_its_own():
    jobs = plan_jobs(TaskPlan(seeds=(0, 1), sessions=(None, 189)))
    assert len(jobs) == 2 * 2 * 2 * 2  # corpora x sizes x seeds x tasks
    assert len({job.key for job in jobs}) == len(jobs)
    sized = [job for job in jobs if job.sessions == 189]
    assert len(sized) == len(jobs) // 2 and all(job.twin == "small, 189 sessions" for job in sized)
    assert "dataset.synthetic.n=189" in sized[0].overrides(Path("w"))
    assert "paths.data_dir=w/data-n189" in sized[0].overrides(Path("w"))
    plain = next(job for job in jobs if job.sessions is None)
    assert plain.twin == "small" and not any(".n=" in o for o in plain.overrides(Path("w")))
