"""The benchmark pieces measure what they say (no timing targets here: those are
`make bench`'s business)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from conftest import CONF_DIR, REPO
from dynmultidep.bench.interview_reading import bench_interview_reading
from dynmultidep.bench.memory import bench_memory
from dynmultidep.bench.scan import mambapy_scan, scan_pass, small_scan_inputs
from dynmultidep.bench.throughput import time_epoch
from dynmultidep.bench.timing import peak_extra_memory
from dynmultidep.ops.scan import selective_scan


def test_peak_memory_sees_a_transient_allocation():
    def allocate() -> None:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        # held for 50 ms: while torch fills it on every core, the sampling thread may
        # not run at all, so the test gives it time to see the block (still transient)
        time.sleep(0.05)
        del block

    assert peak_extra_memory(allocate) >= 60 * 2**20


def test_mambapy_scan_agrees_with_the_reference():
    pytest.importorskip("mambapy")
    small = small_scan_inputs(100, 4, batch=2, channels=32)
    reference = selective_scan(**small, delta_softplus=True, backend="reference")
    torch.testing.assert_close(mambapy_scan(**small), reference, rtol=1e-5, atol=1e-5)


def test_timed_backward_passes_do_not_add_up_their_gradients():
    inputs = {k: v.requires_grad_() for k, v in small_scan_inputs(40, 4).items()}
    upstream = torch.randn(2, 64, 40, generator=torch.Generator().manual_seed(3))
    scan_pass("fused", inputs, True, upstream)
    first = {k: v.grad.clone() for k, v in inputs.items()}
    scan_pass("fused", inputs, True, upstream)
    for k, v in inputs.items():
        torch.testing.assert_close(v.grad, first[k], rtol=0, atol=0)


@pytest.mark.slow  # four fresh processes, each building a recipe model (~40 s)
def test_memory_rows_come_from_fresh_processes():
    rows = bench_memory(CONF_DIR, [64], models=("dynmultidep", "dynmultidep_paper"))
    assert [(r["model"], r["L"], r["pass"]) for r in rows] == [
        (m, 64, p) for m in ("dynmultidep", "dynmultidep_paper") for p in ("fwd", "fwd+bwd")
    ]
    assert all(r["peak_bytes"] > 0 and r["seconds"] > 0 for r in rows), rows


def test_epoch_timing_counts_items_and_padding(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tiny corpus is generated under ./data
    bucketed = time_epoch(CONF_DIR, False, 1.0, "cpu", preset="tiny")
    random = time_epoch(CONF_DIR, True, 1.0, "cpu", preset="tiny")
    assert bucketed["timed_items"] == bucketed["epoch_items"] == random["epoch_items"]
    assert bucketed["seconds"] > 0 and bucketed["items_per_s"] > 0
    assert 0 < random["padded_step_efficiency"] <= bucketed["padded_step_efficiency"] <= 1


@pytest.mark.slow
def test_quick_benchmark_writes_its_tables(tmp_path):
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--quick", "--json", str(out_json),
         "--markdown", str(out_md)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "scan (1/" in done.stderr and "selective scan" in done.stderr  # section by section
    assert "extraction (7/" in done.stderr and "interview_reading (8/" in done.stderr
    assert "interview_tasks (9/9)" in done.stderr  # its tables: test_bench_interview_tasks.py
    results = json.loads(out_json.read_text())
    assert {"scan", "memory", "throughput", "trained", "interview_reading", "targets"} <= set(
        results
    )
    assert {"step_paper", "step_paper_no_mtem"} <= set(results)
    dynamic = {r["model"]: r for r in results["trained"]["dynamic"]}
    skipping, everything = dynamic["dynmultidep_paper"], dynamic["dynmultidep_paper (skipping off)"]
    assert skipping["accuracy"] == everything["accuracy"]  # the same weights and decisions
    assert skipping["flops"] <= everything["flops"]
    targets = " ".join(t["target"] for t in results["targets"])
    assert "with MTEM" in targets and "dynmultidep_paper memory" in targets
    assert all(r["roofline_s"] > 0 and r["times_roofline"] > 0 for r in results["scan"]["rows"])
    assert "mamba_ssm's layout within 1.5x of channels-last" in targets
    assert [r["pass"] for r in results["scan_costs"]["rows"]] == ["fwd", "fwd+bwd"]
    assert "kernel shape" in results["machine"]["kernels"]
    assert "**Targets**" in out_md.read_text() and "Selective scan costs" in out_md.read_text()


def test_scan_costs_are_differences_of_configurations_timed_in_one_run(monkeypatch):
    from dynmultidep.bench import scan

    monkeypatch.setattr(scan, "fma_rate", lambda: 1e11)  # the probe is timed elsewhere
    costs = scan.scan_costs(length=64, n_state=4, repeats=1, fused_repeats=1)
    assert costs["fma_lanes_per_s"] == [1e11, 1e11, 1e11]
    for row in costs["rows"]:
        full, mamba = row["channels-last_s"], row["mamba_ssm layout_s"]
        bare = row["channels-last, no softplus or gate_s"]
        assert row["transposition_s"] == pytest.approx(mamba - full)
        assert row["prelude_s"] == pytest.approx(full - bare)
        assert row["layout_ratio"] == pytest.approx(mamba / full)
        if row["pass"] == "fwd":  # the forward has no gradients to leave out
            assert row["bc_gradients_s"] is None
        else:
            frozen = row["channels-last, no gradients of B and C_s"]
            assert row["bc_gradients_s"] == pytest.approx(full - frozen)
        ops = 8 * 1024 * 64 * 4 * scan.lane_ops(row["pass"])
        assert row["roofline_s"] == pytest.approx(ops / 1e11)


def test_extraction_bench_times_whole_vlogs_at_the_defaults():
    pytest.importorskip("opensmile")  # the `extract` extra
    from dynmultidep.bench.extraction import bench_extraction

    result = bench_extraction(count=3, seconds=2.0, workers=1)
    one, corpus = result["runs"]
    assert (one["videos"], one["media_s"]) == (1, pytest.approx(2.0))
    assert (corpus["videos"], corpus["media_s"]) == (3, pytest.approx(6.0))
    assert result["face_found"] == 1.0  # a face in both seconds of every vlog
    assert result["seconds_per_vlog"] == 2.0
    found = {r["stage"]: r.get("found") for r in result["stages"]}
    assert found["faces + landmarks (1 frame/s)"] == 1.0 and len(found) == 5
    for row in (*result["stages"], *result["runs"]):
        assert row["x_realtime"] > 0


def test_step_profile_sees_the_fused_kernels_and_adds_up():
    from dynmultidep.bench.step import OTHER, bench_step

    result = bench_step(CONF_DIR, batch=2, length=40)
    seconds = {r["group"]: r["seconds"] for r in result["groups"]}
    assert seconds["selective scan (fused)"] > 0 and seconds["causal conv (fused)"] > 0
    assert seconds["matrix products"] > 0 and seconds["mkldnn convolution"] == 0
    assert seconds["dropout (hashed, fused)"] > 0 and seconds["dropout masks (PyTorch)"] == 0
    assert seconds["reversal within lengths"] == 0  # read by index in the kernels
    assert sum(r["share"] for r in result["groups"]) == pytest.approx(1.0)
    assert OTHER in seconds and result["step_over_matmul_plus_scan"] > 1
    plain = bench_step(CONF_DIR, batch=2, length=40, paths="pytorch")
    seconds = {r["group"]: r["seconds"] for r in plain["groups"]}
    assert seconds["causal conv (fused)"] == 0 and seconds["dropout (hashed, fused)"] == 0
    assert seconds["mkldnn convolution"] > 0 and seconds["dropout masks (PyTorch)"] > 0
    assert seconds["reversal within lengths"] > 0


def test_step_under_bf16_keeps_the_fused_dropout_and_scan():
    from dynmultidep.bench.step import bench_step

    result = bench_step(CONF_DIR, batch=2, length=40, precision="bf16")
    assert result["precision"] == "bf16"
    seconds = {r["group"]: r["seconds"] for r in result["groups"]}
    assert seconds["dropout (hashed, fused)"] > 0 and seconds["dropout masks (PyTorch)"] == 0
    assert seconds["selective scan (fused)"] > 0 and seconds["causal conv (fused)"] > 0
    assert result["inference_s"] > 0
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        bench_step(CONF_DIR, batch=2, length=40, precision="fp8")


def test_paper_step_counts_the_local_attention_branch():
    from dynmultidep.bench.step import bench_step

    paper = "dvlog_dynmultidep_paper"
    with_mtem = bench_step(CONF_DIR, batch=2, length=40, experiment=paper)
    without = bench_step(CONF_DIR, batch=2, length=40, experiment=paper,
                         overrides=("model.mtem=false",))  # fmt: skip
    recipe = bench_step(CONF_DIR, batch=2, length=40)
    assert with_mtem["model"] == "dynmultidep_paper"
    assert without["model"] == "dynmultidep_paper model.mtem=false"
    assert with_mtem["step_gflops"] > without["step_gflops"] > recipe["step_gflops"] > 0


@pytest.mark.parametrize(
    ("mode", "rounds"),
    [
        pytest.param("inference", 1, marks=pytest.mark.slow),
        pytest.param("step", 2, marks=pytest.mark.slow),
        pytest.param("scan", 1),
        pytest.param("scan-step", 1, marks=pytest.mark.slow),
        pytest.param("scan-mamba", 1),
        pytest.param("scan-step-mamba", 1, marks=pytest.mark.slow),
    ],
)
def test_revision_timings_run_each_tree_in_its_own_process(mode, rounds):
    from dynmultidep.bench.revisions import compare_trees

    report = compare_trees({"a": REPO, "b": REPO}, mode, batch=2, length=20, rounds=rounds,
                           repeats=2)  # fmt: skip
    assert [row["tree"] for row in report["rows"]] == ["a", "b"]
    for row in report["rows"]:
        assert len(row["times_s"]) == 2 * rounds and all(t > 0 for t in row["times_s"])
    first, second = report["rows"]
    assert first["speedup"] == 1.0 and first["speedup_fastest"] == 1.0
    assert second["speedup"] == pytest.approx(first["median_s"] / second["median_s"])
    assert second["fastest_s"] == min(second["times_s"])
    assert second["speedup_fastest"] == pytest.approx(first["fastest_s"] / second["fastest_s"])


def test_revision_tables_say_what_was_timed():
    from dynmultidep.bench.revision_worker import describe

    assert describe("inference") == "Recipe model, inference"
    assert describe("scan") == "Selective scan (fused, channels-last, d_inner 1024, N 16), forward"
    assert describe("scan-step").endswith("N 16), forward+backward")
    assert describe("scan-mamba") == (
        "Selective scan (fused, mamba_ssm's layout, d_inner 1024, N 16), forward"
    )
    assert describe("scan-step-mamba") == (
        "Selective scan (fused, mamba_ssm's layout, d_inner 1024, N 16), forward+backward"
    )


def test_revision_errors_name_the_problem(tmp_path):
    from dynmultidep.bench.revisions import RevisionError, compare_revisions, time_tree

    with pytest.raises(RevisionError, match="'no-such-commit' is not a commit"):
        compare_revisions(REPO, "no-such-commit")
    (tmp_path / "src").mkdir()  # a tree without the package
    with pytest.raises(RevisionError, match="the timing process failed"):
        time_tree(tmp_path, "inference", 1, 5, 1)


def test_progress_names_the_section_the_job_and_the_time_since_the_start():
    import io

    from rich.console import Console

    from dynmultidep.bench.progress import Progress

    now = [100.0]
    out = io.StringIO()
    progress = Progress(["scan", "memory"], Console(file=out, width=200), clock=lambda: now[0])
    with progress.job("memory", "peak memory [against] length"):
        now[0] += 61.4
        progress.note("dynmultidep, L 1024, fwd")
        now[0] += 10.0
    lines = out.getvalue().splitlines()
    assert lines == [
        "  0:00 memory (2/2) peak memory [against] length ...",
        "  1:01 memory (2/2)   dynmultidep, L 1024, fwd",
        "  1:11 memory (2/2) peak memory [against] length: 71 s",
    ]
    with pytest.raises(ValueError, match="unknown section"):
        with progress.job("step", "x"):
            pass
    with pytest.raises(RuntimeError, match="outside a job"):
        Progress(["scan"], Console(file=io.StringIO())).note("x")


def test_interview_reading_reads_a_twin_cold_then_from_its_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tiny twin is generated under ./data
    (row,) = bench_interview_reading(CONF_DIR, ("daic_woz",), preset="tiny")
    assert row["sessions"] == 12 and 0 < row["hours"] < 1
    assert row["sets"] == {"audio": ["covarep"], "visual": ["aus", "gaze", "pose"]}
    assert row["cold_s"] > row["cached_s"] > 0
    assert row["parsed_file"].endswith("_COVAREP.csv") and row["parsed_mb"] > 0
    assert row["kernel_s"] > 0 and row["reference_s"] > 0
    assert not list((tmp_path / "data").glob("prepared*"))  # read into a scratch cache
