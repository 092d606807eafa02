"""The learnability benchmark: its plans, one job end to end, summaries and targets."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import CONF_DIR, REPO
from dynmultidep.learnability.jobs import (
    LearnabilityJob,
    ModelSpec,
    ensure_corpus,
    routing,
    run_job,
)
from dynmultidep.learnability.plan import FAMILIES, MODELS, PLANS, SIZES
from dynmultidep.learnability.report import summarize, tables, targets
from dynmultidep.learnability.runner import cached_result, plan_jobs


def test_model_specs_and_plans():
    assert ModelSpec.parse("functionals") == ModelSpec("functionals", ("model=functionals",))
    wide = ModelSpec.parse("wide=model.d_model=128 model.d_ffn=512")
    assert wide == ModelSpec("wide", ("model.d_model=128", "model.d_ffn=512"))
    full = PLANS["full"]
    assert full.families == FAMILIES and set(full.models["dvlog"]) == set(MODELS)
    assert len(full.seeds) == 3
    jobs = plan_jobs(full)
    assert len({j.key for j in jobs}) == len(jobs)
    assert len(jobs) == len(FAMILIES) * 3 * sum(len(m) for m in full.models.values())
    # the longest jobs first: D-Vlog size, expert models
    assert jobs[0].size == "dvlog" and jobs[0].model.label not in ("functionals", "temporal_mean")
    assert {j.n for j in jobs} == {SIZES[s] for s in full.models}


def result(family, model, acc, size="dvlog", seed=0, routed=None, majority=0.58):
    return {"family": family, "size": size, "model": model, "seed": seed, "error": None,
            "test": {"acc": acc, "macro_f1": acc, "auroc": acc}, "val": {"acc": acc},
            "majority": majority, "routed_informative": routed, "seconds": 1.0}  # fmt: skip


def test_summaries_and_targets():
    results = [
        result("flat_affect", "functionals", 0.92), result("flat_affect", "dynmultidep", 0.91),
        result("flat_affect", "dynmultidep", 0.89, seed=1),
        result("cross_modal", "functionals", 0.52), result("cross_modal", "dynmultidep", 0.90),
        result("one_modality", "dynmultidep", 0.7, routed=0.85),
        result("one_modality", "video_only", 0.66),
        result("pauses", "functionals", 0.90, size="small"),
        result("pauses", "dynmultidep", 0.70, size="small"),
        result("slowed", "functionals", 0.62, size="small"),  # the small-size target: n/a
        result("slowed", "dynmultidep", 0.60, size="small"),
        {**result("pauses", "video_only", 0.5), "error": "boom"},
        result("head_motion", "functionals", 0.80), result("head_motion", "video_only", 0.78),
    ]  # fmt: skip
    rows = summarize(results)
    flat = next(r for r in rows if r["family"] == "flat_affect" and r["model"] == "dynmultidep")
    assert flat["seeds"] == 2 and flat["test_acc"] == pytest.approx(0.90)
    assert flat["test_acc_std"] == pytest.approx(0.01414, abs=1e-4)
    failed = next(r for r in rows if r["model"] == "video_only" and r["family"] == "pauses")
    assert failed["failed"] == 1 and failed["test_acc"] is None
    met = {t["target"]: t["met"] for t in targets(rows)}
    assert met["D-Vlog size, flat_affect: dynmultidep within 2 points of the best (functionals)"]
    assert met["D-Vlog size, cross_modal: >= 10 points above functionals"]
    assert met["D-Vlog size, one_modality: gate routes >= 80% to the informative modality"]
    assert not met["240 vlogs, pauses: >= 15 points above the majority class"]  # 12 points
    assert met["240 vlogs, slowed: >= 15 points above the majority class"] is None
    assert (
        met["D-Vlog size, one_modality: video_only >= 10 points above the majority class"] is False
    )
    assert not met["240 vlogs, pauses: dynmultidep >= functionals - 3 points"]  # -20
    assert met["240 vlogs, slowed: dynmultidep >= functionals - 3 points"]  # -2
    assert met["D-Vlog size, head_motion: video_only >= functionals - 3 points"]  # -2
    titles = [t for t, _, _ in tables(rows, targets(rows))]
    assert titles[-1] == "Learnability targets" and any("240 vlogs" in t for t in titles)


def test_a_job_trains_on_its_family_and_scores_the_gate(tmp_path):
    job = LearnabilityJob("one_modality", "small", 60, ModelSpec.parse(
        "tiny=model.d_model=8 model.d_ffn=16 model.expand=1 model.d_state=4 model.gate_hidden=8"
    ), seed=0, length_scale=0.05, epochs=1)  # fmt: skip
    root = ensure_corpus(job, tmp_path)
    assert (root / "cues.csv").is_file()
    out = run_job(job, tmp_path, CONF_DIR)
    assert out["error"] is None, out["error"]
    assert 0 <= out["test"]["acc"] <= 1 and out["majority"] >= 0.5 and out["best_epoch"] == 0
    assert set(out["routed"]) <= {"audio", "video", "fused"} and 0 <= out["routed_informative"] <= 1
    run_dir = tmp_path / "runs" / job.key
    assert json.loads((run_dir / "metrics.json").read_text())["dataset"]["root"] == str(root)
    # the same job again starts afresh rather than resuming the finished run
    assert run_job(job, tmp_path, CONF_DIR)["test"] == out["test"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / f"{job.key}.json").write_text(json.dumps(out))
    assert cached_result(tmp_path, job, CONF_DIR) == out
    other = LearnabilityJob(**{**job.__dict__, "epochs": 2})
    assert cached_result(tmp_path, other, CONF_DIR) is None  # other settings
    stale = {**out, "config": "0" * 16}  # as if a default of conf/ had changed since
    (tmp_path / "results" / f"{job.key}.json").write_text(json.dumps(stale))
    assert cached_result(tmp_path, job, CONF_DIR) is None


def test_routing_counts_vlogs_whose_cue_is_in_one_modality(tmp_path):
    (tmp_path / "predictions.csv").write_text(
        "id,gender,label,probability,prediction,gate_audio,gate_video,relied_on\n"
        "1,f,1,0.9,1,1,0,audio\n2,f,0,0.1,0,0,1,video\n3,m,1,0.6,1,1,0,audio\n"
    )
    out = routing(tmp_path, {"1": "audio", "2": "audio", "3": "both"})
    assert out["routed_informative"] == 0.5
    assert out["routed"] == pytest.approx({"audio": 2 / 3, "video": 1 / 3})


def test_the_script_refuses_unknown_families():
    done = subprocess.run(
        [sys.executable, "scripts/learnability.py", "--families", "sadness"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "unknown families" in done.stderr


def test_variants_run_beside_the_plans_models_unless_models_are_named():
    spec = importlib.util.spec_from_file_location(
        "learnability_script", REPO / "scripts" / "learnability.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    wide = "wide=model.d_model=128"
    plan = script.choose_plan(script.parse_args(["--sizes", "dvlog", "--variant", wide]))
    assert plan.models == {"dvlog": (*MODELS, wide)}
    plan = script.choose_plan(script.parse_args(["--models", "functionals", "--variant", wide]))
    assert set(plan.models.values()) == {("functionals", wide)}
    plan = script.choose_plan(script.parse_args(["--models", "", "--variant", wide, "--quick"]))
    assert plan.models == {"small": (wide,)} and plan.seeds == PLANS["quick"].seeds


def test_tables_render_as_markdown_with_their_titles():
    from dynmultidep.bench.tables import markdown_tables

    lines = markdown_tables([("Accuracy", ["family", "acc"], [["pauses", "0.9"]])])
    assert lines == ["**Accuracy**", "", "| family | acc |", "|---|---|", "| pauses | 0.9 |", ""]
