"""The GPU check's own logic, without a GPU: ``run.sh --device cpu`` runs every step at
tiny sizes; the budget, failures, reports, the JUnit counts and the build patch of the
kernel packages are checked piece by piece."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from conftest import REPO
from dynmultidep.gpu_check import steps as check_steps
from dynmultidep.gpu_check.kernels import arch_patch, unpack_for_arch
from dynmultidep.gpu_check.plan import PLANS, STEPS
from dynmultidep.gpu_check.process import Context
from dynmultidep.gpu_check.runner import run_check, with_needs
from dynmultidep.gpu_check.steps import junit_counts

RUN_SH = REPO / "scripts" / "gpu_check" / "run.sh"


@pytest.fixture(scope="module")
def cpu_check(tmp_path_factory):
    """``run.sh OUT --device cpu``: (exit status, output, OUT)."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(RUN_SH), str(tmp / "out"), "--device", "cpu", "--work", str(tmp / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    return done, tmp / "out"


@pytest.mark.slow  # the whole check on the CPU: about a minute of `make test`'s ten
def test_run_sh_on_the_cpu_runs_every_step_and_reports(cpu_check):
    done, out = cpu_check
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    steps = report["steps"]
    assert list(steps) == list(STEPS) and report["failed"] == []
    status = {name: r["status"] for name, r in steps.items()}
    assert status == {**dict.fromkeys(STEPS, "passed"), "build_kernels": "skipped",
                      "bench_kernels": "skipped"}  # fmt: skip
    assert steps["build_kernels"]["summary"] == "needs a CUDA device"
    # the CUDA tests are collected, and all skipped without a GPU
    counts = steps["cuda_tests"]["counts"]
    assert counts["tests"] > 0 and counts["skipped"] == counts["tests"]
    assert steps["environment"]["facts"]["cuda_available"] is False
    for name in ("train_32", "train_bf16"):
        trained = steps[name]
        assert len(trained["epoch_s"]) == PLANS["cpu"].epochs
        assert all(s > 0 for s in trained["epoch_s"]) and trained["peak_memory_mib"] is None
        assert trained["kernels"] == {"conv": ["fused"], "scan": ["fused"], "fallbacks": {}}
    assert steps["train_bf16"]["precision"] == "bf16-mixed"
    moved = steps["eval_cpu"]
    assert moved["vlogs"] > 0 and moved["max_abs_diff"] <= 1e-4 and moved["routes_differing"] == 0
    bench = json.loads((out / "bench.json").read_text())
    assert {"scan", "throughput"} <= set(bench) and "step" not in bench
    # printed as it went, and written down
    assert "[1/9] environment" in done.stdout and "-> passed" in done.stdout
    assert "[9/9] bench_kernels" in (out / "check.log").read_text()
    markdown = (out / "report.md").read_text()
    assert "| eval_cpu | passed |" in markdown and "## Training" in markdown
    assert "## Benchmarks" in markdown


def with_budget(seconds: float):
    return replace(PLANS["cpu"], budget_s=seconds)


def test_steps_that_cannot_fit_the_budget_are_skipped(tmp_path):
    report = run_check(with_budget(1.0), REPO, tmp_path / "out", tmp_path / "work",
                       sys.executable, tmp_path / "bundle", ["environment", "corpus"])  # fmt: skip
    steps = report["steps"]
    assert [r["status"] for r in steps.values()] == ["skipped", "skipped"]
    assert steps["environment"]["summary"].startswith("no time left")
    assert report["failed"] == []


def test_a_step_that_raises_is_recorded_and_the_next_one_runs(tmp_path, monkeypatch):
    def broken(ctx, done, timeout):
        raise RuntimeError("no driver")

    monkeypatch.setitem(check_steps.STEP_FUNCTIONS, "environment", broken)
    steps = ["environment", "build_kernels"]
    report = run_check(with_budget(60.0), REPO, tmp_path / "out", tmp_path / "work",
                       sys.executable, tmp_path / "bundle", steps)  # fmt: skip
    assert report["steps"]["environment"] == {**report["steps"]["environment"],
                                              "status": "failed",
                                              "summary": "RuntimeError: no driver"}  # fmt: skip
    assert report["steps"]["build_kernels"]["summary"] == "needs a CUDA device"  # it ran
    assert report["failed"] == ["environment"]
    assert "RuntimeError: no driver" in (tmp_path / "out" / "report.md").read_text()


def test_a_command_past_its_time_is_killed_and_reported(tmp_path):
    plan = PLANS["cpu"]
    with open(tmp_path / "check.log", "w") as log:
        ctx = Context(plan, REPO, tmp_path, tmp_path, sys.executable, tmp_path,
                      time.monotonic() + 60, log)  # fmt: skip
        made = check_steps.corpus(ctx, {}, 60)
        started = time.monotonic()
        result = check_steps.train(ctx, {"corpus": made}, 1.0, "train_32")
    assert made["status"] == "passed"
    assert time.monotonic() - started < 20  # killed, not waited for
    assert result["status"] == "failed" and result["summary"].endswith("timed out")
    assert result["precision"] == "32-true" and "tail" in result
    assert "killed after 1 s" in (tmp_path / "check.log").read_text()


def test_a_part_of_the_check_brings_the_steps_it_needs():
    assert with_needs(["eval_cpu"]) == ["environment", "corpus", "train_32", "eval_cpu"]
    assert with_needs(["bench_kernels"]) == ["environment", "corpus", "build_kernels",
                                             "bench_kernels"]  # fmt: skip
    assert with_needs(list(reversed(STEPS))) == list(STEPS)


def test_unknown_steps_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown steps build"):
        run_check(PLANS["cpu"], REPO, tmp_path, tmp_path, sys.executable, tmp_path, ["build"])


def test_run_sh_without_hydra_or_wheels_says_what_to_do(tmp_path):
    """An interpreter without hydra and no prepared wheels: one line, exit status 2."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    env = {**os.environ, "PYTHON": str(bare / "bin" / "python"),
           "GPU_CHECK_BUNDLE": str(tmp_path / "nothing")}  # fmt: skip
    done = subprocess.run(["bash", str(RUN_SH), str(tmp_path / "out")], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: hydra-core is not installed")
    assert "prepare.sh" in done.stderr


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="2" tests="5">
<testcase classname="tests.test_cuda" name="test_a"/>
<testcase classname="tests.test_cuda" name="test_b"><failure message="assert 1 == 2&#10;more"/>
</testcase>
<testcase classname="tests.test_cuda" name="test_c"><error message="CUDA error: out of memory"/>
</testcase>
<testcase classname="tests.test_cuda" name="test_d"><skipped message="no GPU"/></testcase>
<testcase classname="tests.test_cuda" name="test_e"><skipped message="no GPU"/></testcase>
</testsuite></testsuites>
"""


def test_junit_counts_name_the_failing_tests(tmp_path):
    (tmp_path / "r.xml").write_text(JUNIT)
    counts = junit_counts(tmp_path / "r.xml")
    assert (counts["tests"], counts["failures"], counts["errors"], counts["skipped"]) == (
        5, 1, 1, 2)  # fmt: skip
    assert counts["failed"] == [
        {"test": "tests.test_cuda::test_b", "message": "assert 1 == 2"},
        {"test": "tests.test_cuda::test_c", "message": "CUDA error: out of memory"},
    ]


SETUP_PY = """cc_flag = []
if build:
    cc_flag.append("-DBUILD_PYTHON_PACKAGE")
    cc_flag.append("-gencode")
    cc_flag.append("arch=compute_75,code=sm_75")
    cc_flag.append("-gencode")
    cc_flag.append("arch=compute_90,code=sm_90")

    # HACK: The compiler flag -D_GLIBCXX_USE_CXX11_ABI is set to be the same as
    flags = cc_flag
"""


def test_the_build_patch_keeps_other_flags_and_one_architecture():
    namespace = {"build": True}
    exec(arch_patch(SETUP_PY, "9.0"), namespace)  # the patched script, run
    assert namespace["flags"] == ["-DBUILD_PYTHON_PACKAGE", "-gencode",
                                  "arch=compute_90,code=sm_90"]  # fmt: skip
    with pytest.raises(ValueError, match="expected one line starting"):
        arch_patch("cc_flag = []\n", "9.0")


@pytest.mark.skipif(
    not list((REPO / ".gpu_check" / "sdists").glob("*.tar.gz")),
    reason="no source distributions prepared (scripts/gpu_check/prepare.sh)",
)
def test_the_prepared_source_distributions_take_the_patch(tmp_path):
    for sdist in sorted((REPO / ".gpu_check" / "sdists").glob("*.tar.gz")):
        source = unpack_for_arch(sdist, tmp_path, "9.0")
        text = (source / "setup.py").read_text()
        assert "arch=compute_90,code=sm_90']" in text
        compile(text, str(source / "setup.py"), "exec")


@pytest.mark.slow
def test_prepare_sh_fetches_wheels_that_install_offline(tmp_path):
    """Needs the package registry: the wheels install with --no-index and import."""
    bundle = tmp_path / "bundle"
    env = {**os.environ, "GPU_CHECK_BUNDLE": str(bundle), "PYTHON": sys.executable}
    subprocess.run(["bash", str(REPO / "scripts" / "gpu_check" / "prepare.sh")], cwd=REPO,
                   check=True, timeout=600, env=env)  # fmt: skip
    names = sorted(p.name.split("-")[0] for p in (bundle / "wheels").glob("*.whl"))
    assert names == ["antlr4_python3_runtime", "hydra_core", "omegaconf"]
    assert sorted(p.name.split("-")[0] for p in (bundle / "sdists").iterdir()) == [
        "causal_conv1d", "mamba_ssm"]  # fmt: skip
    assert len((bundle / "MANIFEST").read_text().splitlines()) == 5
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--target", str(site), *map(str, (bundle / "wheels").glob("*.whl"))],
                   check=True)  # fmt: skip
    found = subprocess.run([sys.executable, "-c", "import hydra, omegaconf; print(hydra.__file__)"],
                           env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True,
                           text=True, check=True)  # fmt: skip
    assert found.stdout.startswith(str(site))
