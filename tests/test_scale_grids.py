"""Grids: sweep configs, the summary of a sweep directory, multiruns end to end
(summary written by the Hydra callback, finished jobs skipped on a rerun, failed
jobs listed, a gender grid on LMVD refused)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from conftest import run_script, tiny_synthetic
from dynmultidep.errors import FileError
from dynmultidep.sweeps.summary import (
    gender_grid_figure,
    gender_grids,
    read_jobs,
    summarize,
    write_summary,
)

METRIC_NAMES = ("acc", "precision", "recall", "f1", "macro_f1", "auroc")


def fake_job(sweep: Path, num: int, overrides: list[str], metrics: dict | None, **extra) -> Path:
    """A job directory as a multirun leaves it."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        payload = {"metrics": metrics, "all_positive_baseline": {"acc": 0.5, "f1": 0.6}, **extra}
        (job / "metrics.json").write_text(json.dumps(payload))
    return job


def fake_gender_grid(sweep: Path, genders: tuple, job_of) -> None:
    """A gender grid's jobs, train x test over ``genders``: ``job_of(num, train, test)``
    gives each job's ``(metrics, extra)`` for :func:`fake_job`."""
    cells = [(train, test) for train in genders for test in genders]
    for num, (train_gender, test_gender) in enumerate(cells):
        overrides = [f"dataset.train_gender={train_gender}",
                     f"dataset.test_gender={test_gender}"]  # fmt: skip
        dataset = {"train_gender": train_gender, "test_gender": test_gender}
        metrics, extra = job_of(num, train_gender, test_gender)
        fake_job(sweep, num, overrides, metrics, dataset=dataset, seed=0, **extra)


def metrics_of(value: float) -> dict:
    return {name: value for name in METRIC_NAMES}


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def compose_with_hydra(*overrides: str):
    from hydra import compose, initialize_config_dir

    from conftest import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", list(overrides), return_hydra_config=True)


def test_summary_groups_seeds_and_lists_failed_jobs(tmp_path):
    for num, (model, seed, value) in enumerate(
        [("a", 0, 0.6), ("a", 1, 0.8), ("b", 0, 0.5), ("b", 1, None), ("a", 2, 0.7)]
    ):
        overrides = ["debug=fast", f"model={model}", f"seed={seed}"]
        extra = {"seed": seed}
        fake_job(tmp_path, num, overrides, None if value is None else metrics_of(value), **extra)
    (tmp_path / "3" / "error.log").write_text("error: something broke\nTraceback ...\n")
    rows = write_summary(tmp_path)
    assert [(r.configuration, len(r.jobs), len(r.failed)) for r in rows] == [
        ("model=a", 3, 0),
        ("model=b", 1, 1),
    ]
    table = read_rows(tmp_path / "summary.csv")
    assert table[0]["seeds"] == "0 1 2" and table[0]["n_seeds"] == "3"
    assert float(table[0]["f1_mean"]) == pytest.approx(0.7, abs=1e-4)
    assert float(table[0]["f1_std"]) == pytest.approx(statistics.stdev([0.6, 0.8, 0.7]), abs=1e-4)
    assert table[1]["f1_std"] == "" and table[1]["failed"] == "1"  # one seed: no std
    assert float(table[1]["all_positive_f1"]) == pytest.approx(0.6)
    markdown = (tmp_path / "summary.md").read_text()
    assert "| `model=a` | 3 | 0.700 ± 0.100 |" in markdown
    assert "Overrides common to all jobs: `debug=fast`" in markdown
    assert "- job `3` (`model=b`): error: something broke" in markdown
    assert not (tmp_path / "gender_grid.png").exists()


def test_a_job_without_metrics_or_error_is_reported_unfinished(tmp_path):
    fake_job(tmp_path, 0, ["seed=0"], metrics_of(0.5), seed=0)
    fake_job(tmp_path, 1, ["seed=1"], None)
    (row,) = summarize(read_jobs(tmp_path))
    assert row.failed[0].error.startswith("no metrics.json: unfinished")


def test_gender_grid_summary_draws_the_heatmap(tmp_path):
    fake_gender_grid(tmp_path, ("both", "m", "f"), lambda num, *_: (metrics_of(num / 10), {}))
    rows = write_summary(tmp_path)
    assert len(rows) == 9
    assert (tmp_path / "gender_grid.png").stat().st_size > 10_000


def test_a_daic_woz_gender_grid_summary_has_its_codes(tmp_path):
    def job_of(num, train_gender, test_gender):
        codes = ("0", "1") if test_gender == "both" else (str(test_gender),)
        by_gender = {c: {"metrics": metrics_of(0.5 + int(c) / 10)} for c in codes}
        return metrics_of(num / 10), {"by_gender": by_gender}

    fake_gender_grid(tmp_path, ("both", 0, 1), job_of)  # Hydra reads the codes as numbers
    rows = write_summary(tmp_path)
    assert len(rows) == 9
    assert {job.genders for row in rows for job in row.jobs} == {
        (a, b) for a in ("both", "0", "1") for b in ("both", "0", "1")
    }
    (first, *_) = read_rows(tmp_path / "summary.csv")
    assert float(first["1_acc_mean"]) == pytest.approx(0.6) and "m_acc_mean" not in first
    assert (
        "| `dataset.train_gender=both dataset.test_gender=both` | 0 | 1 |"
        in (tmp_path / "summary.md").read_text()
    )
    assert (tmp_path / "gender_grid.png").stat().st_size > 10_000


def test_summary_of_a_directory_without_jobs_is_an_error(tmp_path):
    with pytest.raises(FileError, match="holds no job directories"):
        write_summary(tmp_path)
    with pytest.raises(FileError, match="sweep directory not found"):
        write_summary(tmp_path / "missing")


@pytest.mark.parametrize(
    ("sweep", "params"),
    [
        ("gender_grid", {"dataset.train_gender": "both,m,f", "dataset.test_gender": "both,m,f"}),
        ("seeds", {"seed": "range(5)"}),
        (
            "ablation",
            {
                "model": "dynmultidep,dynmultidep_no_sharing,concat_fusion,late_fusion,"
                "audio_only,video_only,temporal_mean,functionals,dynmultidep_paper,"
                "dynmultidep_paper_no_local,dynmultidep_paper_no_mamba,"
                "dynmultidep_paper_fixed_router,dynmultidep_paper_no_modality_gate,"
                "dynmultidep_paper_no_fusion_gate"
            },
        ),  # fmt: skip
        (
            "gender_grid_seeds",
            {
                "dataset.train_gender": "both,m,f",
                "dataset.test_gender": "both,m,f",
                "seed": "range(5)",
            },
        ),  # fmt: skip
    ],
)
def test_sweep_configs(sweep, params):
    from conftest import CONF_DIR

    cfg = compose_with_hydra(f"sweep={sweep}")
    assert dict(cfg.hydra.sweeper.params) == params
    models = {p.stem for p in (CONF_DIR / "model").glob("[!_]*.yaml")}
    if sweep == "ablation":
        assert set(params["model"].split(",")) == models


@pytest.mark.slow  # needs the optional extras, which `make test-slow` installs
def test_optuna_search_config():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_with_hydra("hparams_search=optuna")
    assert cfg.optimized_metric == "val/macro_f1" and cfg.hydra.sweeper.direction == "maximize"
    assert set(cfg.hydra.sweeper.params) == {
        "module.optimizer.lr", "model.d_state", "model.dropout", "model.temp",
    }  # fmt: skip
    regression = compose_with_hydra("hparams_search=optuna", "module.task=regression")
    assert regression.optimized_metric == "val/rmse"
    assert regression.hydra.sweeper.direction == "minimize"


@pytest.mark.parametrize(
    ("overrides", "metric", "direction"),
    [
        ([], "val/macro_f1", "maximize"),
        (["module.task=regression"], "val/rmse", "minimize"),
        (["module.task=regression", "optimized_metric=val/ccc"], "val/ccc", "maximize"),
        (["experiment=dvlog_dynmultidep"], "val/avg4", "maximize"),
        (["experiment=dvlog_dynmultidep", "module.task=regression"], "val/rmse", "minimize"),
        (["experiment=lmvd_dynmultidep_improved"], "val/macro_f1", "maximize"),
        (["experiment=lmvd_dynmultidep_improved", "module.task=regression"], "val/rmse",
         "minimize"),
    ],
)  # fmt: skip
def test_searches_and_recipes_optimise_the_tasks_metric(overrides, metric, direction):
    """What Optuna's direction (hparams_search=optuna, read here without the optional
    plugin) and the checkpoint callbacks follow: the task's metric, or the one given."""
    from omegaconf import OmegaConf

    from conftest import CONF_DIR, compose_config

    cfg = compose_config("train", overrides)
    search = OmegaConf.load(CONF_DIR / "hparams_search" / "optuna.yaml")
    assert "optimized_metric" not in search  # the task's, or the command line's
    OmegaConf.set_struct(cfg, False)
    cfg.hydra = search.hydra
    assert cfg.optimized_metric == metric and cfg.hydra.sweeper.direction == direction
    assert cfg.callbacks.model_checkpoint.mode == direction[:3]


@pytest.mark.parametrize(
    ("dataset", "genders"),
    [("synthetic", "both,m,f"), ("dvlog", "both,m,f"), ("daic_woz", "both,0,1"),
     ("synthetic_daic_woz", "both,0,1"), ("edaic", "both,m,f")],
)  # fmt: skip
def test_the_gender_grid_sweeps_each_corpus_s_own_genders(dataset, genders):
    from dynmultidep.sweeps.callback import check_sweep

    for sweep in ("gender_grid", "gender_grid_seeds"):
        cfg = compose_with_hydra(f"sweep={sweep}", f"dataset={dataset}")
        params = cfg.hydra.sweeper.params
        assert (params["dataset.train_gender"], params["dataset.test_gender"]) == (genders,) * 2
        check_sweep(cfg)


def test_a_gender_grid_of_genders_the_corpus_lacks_is_refused():
    from omegaconf import open_dict

    from dynmultidep.errors import DynMultiDepError
    from dynmultidep.sweeps.callback import check_sweep

    def grid(dataset: str, genders: str):
        cfg = compose_with_hydra("sweep=gender_grid", f"dataset={dataset}")
        with open_dict(cfg):
            cfg.hydra.sweeper.params["dataset.train_gender"] = genders
        return cfg

    with pytest.raises(
        DynMultiDepError,
        match=r"^dataset.train_gender: daic_woz's genders are "
        r"0 and 1 \(or both\), not f, m; sweep=gender_grid chooses them",
    ):
        check_sweep(grid("daic_woz", "both,m,f"))  # fmt: skip
    check_sweep(grid("edaic", "male,f"))
    check_sweep(grid("dvlog", "Both,ALL,m,f"))  # both in any spelling selects no gender
    with pytest.raises(DynMultiDepError, match=r"^dataset.train_gender: unknown gender selection"):
        check_sweep(grid("dvlog", "both,x"))


@pytest.mark.slow  # needs the optional extras, which `make test-slow` installs
def test_slurm_launcher_config():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_with_hydra("hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                             "hydra.launcher.gpus_per_node=2")  # fmt: skip
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.tasks_per_node == 2
    assert launcher.timeout_min == 240 and launcher.array_parallelism == 16


@pytest.mark.slow  # a real multirun of several training jobs (20-30 s); the sweep
# callback's checks run by default in the refusal tests
def test_multirun_summary_matches_its_jobs_and_a_rerun_skips_them(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1", "debug=fast", f"hydra.sweep.dir={sweep}", *tiny_synthetic(tmp_path)]
    result = run_script("train", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [json.loads((sweep / n / "metrics.json").read_text()) for n in ("0", "1")]
    (row,) = read_rows(sweep / "summary.csv")
    assert row["n_seeds"] == "2" and row["seeds"] == "0 1" and row["failed"] == "0"
    for name in METRIC_NAMES:
        values = [job["metrics"][name] for job in jobs]
        assert float(row[f"{name}_mean"]) == pytest.approx(statistics.fmean(values), abs=5e-5)
        assert float(row[f"{name}_std"]) == pytest.approx(statistics.stdev(values), abs=5e-5)
    assert "| `all jobs` | 2 |" in result.stdout

    stamps = [(sweep / n / "metrics.json").stat().st_mtime_ns for n in ("0", "1")]
    again = run_script("train", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("has finished (metrics.json exists): skipped") == 2
    assert [(sweep / n / "metrics.json").stat().st_mtime_ns for n in ("0", "1")] == stamps


@pytest.mark.slow  # two multiruns of src/train.py (~30 s); the summary logic is tested above
def test_a_failing_job_is_listed_and_the_others_still_run(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_script("train", "-m", "dataset.batch_size=8,-1", "debug=fast",
                        f"hydra.sweep.dir={sweep}", *tiny_synthetic(tmp_path)[:2])  # fmt: skip
    assert result.returncode == 1
    assert (sweep / "0" / "metrics.json").is_file()
    assert not (sweep / "1" / "metrics.json").exists()
    assert (sweep / "1" / "error.log").read_text().startswith("error: ")
    summary = (sweep / "summary.md").read_text()
    assert "## Failed jobs: 1" in summary and "- job `1` (`dataset.batch_size=-1`)" in summary
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 job(s) failed")
    # run again with the second value mended: job 0 is skipped, job 1 runs and succeeds
    mended = run_script("train", "-m", "dataset.batch_size=8,4", "debug=fast",
                        f"hydra.sweep.dir={sweep}", *tiny_synthetic(tmp_path)[:2])  # fmt: skip
    assert mended.returncode == 0, mended.stderr[-3000:]
    assert (sweep / "1" / "metrics.json").is_file() and not (sweep / "1" / "error.log").exists()
    assert "## Failed jobs: 0" in (sweep / "summary.md").read_text()


def test_gender_grid_on_lmvd_is_refused_before_any_job(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_script("train", "-m", "sweep=gender_grid", "dataset=synthetic_lmvd",
                        f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: dataset.train_gender: LMVD has no gender labels")
    assert not sweep.exists() or not list(sweep.glob("*/.hydra"))


def test_a_regression_gender_grid_draws_rmse_and_ccc(tmp_path):
    def job_of(num, *_):
        scores = {"rmse": 3.0 + num, "mae": 2.0, "ccc": 0.5, "pearson": 0.6, "acc": 0.7,
                  "f1": 0.6, "macro_f1": 0.6, "auroc": 0.8}  # fmt: skip
        return scores, {"objective": "regression"}

    fake_gender_grid(tmp_path, ("both", "m", "f"), job_of)
    (grid,) = gender_grids(read_jobs(tmp_path)).values()
    figure = gender_grid_figure(grid, "train gender x test gender")
    rmse, ccc = figure.axes[:2]
    assert (rmse.get_title(), ccc.get_title()) == ("RMSE", "CCC")
    values = rmse.images[0].get_array()
    assert values[0, 0] == 3.0 and values[2, 2] == 11.0  # both x both, f x f
    assert rmse.images[0].get_clim() == (0.0, 11.0)


def test_a_gender_grid_without_one_of_the_codes_draws_what_it_has(tmp_path):
    # every job of code 1 failed, or was not asked for
    fake_gender_grid(tmp_path, ("both", "0"), lambda num, *_: (metrics_of(0.5 + num / 10), {}))
    (grid,) = gender_grids(read_jobs(tmp_path)).values()
    f1 = gender_grid_figure(grid, "train gender x test gender").axes[0]
    assert [label.get_text() for label in f1.get_xticklabels()] == ["both", "0"]
    assert f1.images[0].get_array().shape == (2, 2)
