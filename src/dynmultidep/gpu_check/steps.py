"""The steps of the GPU check, one function each.

``step(ctx, done, timeout) -> dict``: ``done`` holds the records of the steps run
before it; the record returned has ``status`` (``passed``, ``failed`` or
``skipped``), a one-line ``summary`` and the step's measurements. The runner adds
the step's name and wall time.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

from dynmultidep.bench.throughput import EPOCH_TARGET_S
from dynmultidep.gpu_check.kernels import unpack_for_arch
from dynmultidep.gpu_check.plan import KERNEL_PACKAGES, MOVE_TOLERANCE, PRECISIONS, CheckPlan
from dynmultidep.gpu_check.process import Completed, Context, run_command

# no progress bars or summaries in the log; eval.yaml has no model summary to switch off
QUIET = ("logger=csv", "callbacks.rich_progress_bar=null", "+trainer.enable_progress_bar=false")
QUIET_TRAIN = (*QUIET, "callbacks.model_summary=null", "+trainer.enable_model_summary=false")


def record(status: str, summary: str, **details) -> dict:
    return {"status": status, "summary": summary, **details}


def failed_command(what: str, done: Completed, **details) -> dict:
    why = "timed out" if done.returncode is None else f"exit status {done.returncode}"
    return record("failed", f"{what}: {why}", tail=done.tail(), **details)


# ----------------------------------------------------------------- environment
def environment(ctx: Context, done: dict, timeout: float) -> dict:
    probe = run_command(ctx, [ctx.python, "-m", "dynmultidep.gpu_check.environment"], timeout)
    if not probe.ok:
        return failed_command("the environment probe", probe)
    facts = json.loads(next(line for line in reversed(probe.lines) if line.startswith("{")))
    if ctx.plan.device == "cuda" and not facts["cuda_available"]:
        return record("failed", "torch sees no CUDA device", facts=facts)
    gpu = facts["gpu"] or "no GPU"
    if facts["capability"]:
        gpu += f" (sm_{facts['capability'].replace('.', '')}, {facts['multiprocessors']} SMs, "
        gpu += f"{facts['gpu_memory_gib']} GiB)"
    summary = (f"{gpu}; driver {facts['driver'] or '—'}; torch {facts['torch']} "
               f"(CUDA {facts['torch_cuda'] or '—'}); nvcc: {facts['nvcc'] or '—'}; "
               f"Python {facts['python']}, {facts['cpu_count']} CPUs")  # fmt: skip
    return record("passed", summary, facts=facts)


# ------------------------------------------------------------------ CUDA tests
def junit_counts(path: Path) -> dict:
    """Counts and failing tests of a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}  # fmt: skip
    counts["failed"] = [
        {"test": f"{case.get('classname')}::{case.get('name')}",
         "message": (problem.get("message") or "").splitlines()[0][:200]
         if problem.get("message") else ""}
        for case in root.iter("testcase")
        for problem in list(case.findall("failure")) + list(case.findall("error"))
    ]  # fmt: skip
    return counts


def pytest_cuda(ctx: Context, timeout: float, name: str, select: str | None = None) -> dict:
    """``pytest -m cuda`` (``-k select``), counted from its JUnit report."""
    xml = ctx.work / f"{name}.xml"
    args = [ctx.python, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
            f"--junitxml={xml}", "tests"]  # fmt: skip
    if select:
        args += ["-k", select]
    run = run_command(ctx, args, timeout)
    if not xml.is_file():
        return failed_command("pytest -m cuda", run)
    counts = junit_counts(xml)
    counts["seconds"] = run.seconds
    broken = counts["failures"] + counts["errors"]
    passed = counts["tests"] - broken - counts["skipped"]
    summary = f"{passed} passed, {broken} failed, {counts['skipped']} skipped"
    if counts["tests"] == 0:
        return record("failed", "no CUDA tests collected", counts=counts)
    if run.returncode is None:
        return record("failed", f"timed out after {summary}", counts=counts)
    status = "failed" if broken or run.returncode != 0 else "passed"
    return record(status, summary, counts=counts)


def cuda_tests(ctx: Context, done: dict, timeout: float) -> dict:
    return pytest_cuda(ctx, timeout, "cuda_tests")


# -------------------------------------------------------------------- training
def corpus_root(ctx: Context) -> Path:
    return ctx.work / f"synthetic_dvlog_{ctx.plan.preset}"


def corpus(ctx: Context, done: dict, timeout: float) -> dict:
    root = corpus_root(ctx)
    if (root / "synthetic.json").is_file():
        return record("passed", f"reused {root}", root=str(root))
    run = run_command(ctx, [ctx.python, "scripts/make_synthetic.py", "--layout", "dvlog",
                            "--preset", ctx.plan.preset, "--out", str(root)], timeout)  # fmt: skip
    if not run.ok:
        return failed_command("make_synthetic.py", run)
    return record("passed", f"synthetic D-Vlog ({ctx.plan.preset}) in {run.seconds:.0f} s",
                  root=str(root))  # fmt: skip


def train_overrides(plan: CheckPlan, root: Path, run_dir: Path, precision: str) -> list[str]:
    """``src/train.py`` overrides: the D-Vlog recipe on the synthetic D-Vlog at ``root``."""
    return [
        "experiment=dvlog_dynmultidep", "dataset=synthetic",
        f"dataset.synthetic.preset={plan.preset}", f"dataset.root={root}",
        f"dataset.max_tokens={plan.max_tokens or 'null'}",
        "trainer=gpu" if plan.device == "cuda" else "trainer=cpu",
        f"trainer.precision={precision}", f"trainer.max_epochs={plan.epochs}",
        f"hydra.run.dir={run_dir}", *plan.model, *QUIET_TRAIN,
    ]  # fmt: skip


def epoch_figures(metrics_csv: Path) -> dict[str, list[float]]:
    """Per-epoch ``perf/*`` values logged by EpochResources, in epoch order."""
    figures: dict[str, list[float]] = {"train_epoch_s": [], "peak_memory_mib": []}
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            for name, values in figures.items():
                if row.get(f"perf/{name}"):
                    values.append(float(row[f"perf/{name}"]))
    return figures


def steady(values: list[float]) -> float | None:
    """The median epoch after the first (which compiles and warms up), else the only one."""
    later = values[1:] or values
    return statistics.median(later) if later else None


def train(ctx: Context, done: dict, timeout: float, step: str) -> dict:
    precision = PRECISIONS[step]
    if done.get("corpus", {}).get("status") != "passed":
        return record("skipped", "no corpus")
    run_dir = ctx.work / step
    args = [ctx.python, "src/train.py",
            *train_overrides(ctx.plan, corpus_root(ctx), run_dir, precision)]  # fmt: skip
    run = run_command(ctx, args, timeout)
    metrics_path, metrics_csv = run_dir / "metrics.json", run_dir / "csv" / "metrics.csv"
    if not run.ok or not metrics_path.is_file():  # the epochs it finished still say something
        figures = epoch_figures(metrics_csv) if metrics_csv.is_file() else {}
        done_s = ", ".join(f"{s:.3g}" for s in figures.get("train_epoch_s", []))
        what = f"train.py ({precision}{'; epochs done: ' + done_s + ' s' if done_s else ''})"
        return failed_command(what, run, precision=precision, **figures)
    metrics = json.loads(metrics_path.read_text())
    figures = epoch_figures(metrics_csv)
    epoch = steady(figures["train_epoch_s"])
    peak = max(figures["peak_memory_mib"], default=None)
    details = {
        "precision": precision, "epochs": ctx.plan.epochs, "run_dir": str(run_dir),
        "checkpoint": metrics["checkpoint"], "test_acc": metrics["metrics"]["acc"],
        "epoch_s": figures["train_epoch_s"], "steady_epoch_s": epoch,
        "peak_memory_mib": peak, "kernels": metrics.get("kernels"),
    }  # fmt: skip
    summary = (f"{precision}: epochs {', '.join(f'{s:.3g}' for s in figures['train_epoch_s'])} s"
               f", peak {'—' if peak is None else f'{peak:.0f} MiB'}, test acc "
               f"{metrics['metrics']['acc']:.3f}, kernels {metrics.get('kernels')}")  # fmt: skip
    if ctx.plan.device == "cuda" and precision == "bf16-mixed" and epoch is not None:
        limit = EPOCH_TARGET_S["cuda"]
        details["target"] = {"text": f"train.py bucketed bf16 epoch <= {limit:.0f} s",
                             "measured": f"{epoch:.1f} s", "met": epoch <= limit}  # fmt: skip
    return record("passed", summary, **details)


def train_32(ctx: Context, done: dict, timeout: float) -> dict:
    return train(ctx, done, timeout, "train_32")


def train_bf16(ctx: Context, done: dict, timeout: float) -> dict:
    return train(ctx, done, timeout, "train_bf16")


# ---------------------------------------------------- the checkpoint on the CPU
def read_predictions(path: Path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def eval_cpu(ctx: Context, done: dict, timeout: float) -> dict:
    """``eval.py`` of the fp32 run's checkpoint on the CPU: the test fold's
    probabilities and routes against those the training run wrote."""
    trained = done.get("train_32", {})
    if trained.get("status") != "passed":
        return record("skipped", "no fp32 checkpoint")
    out = ctx.work / "eval_cpu"
    args = [ctx.python, "src/eval.py", f"ckpt_path={trained['checkpoint']}", "trainer=cpu",
            "fold=test", f"hydra.run.dir={out}", *QUIET]  # fmt: skip
    run = run_command(ctx, args, timeout, env={"CUDA_VISIBLE_DEVICES": ""})
    if not run.ok or not (out / "predictions.csv").is_file():
        return failed_command("eval.py on the CPU", run)
    before = read_predictions(Path(trained["run_dir"]) / "predictions.csv")
    after = read_predictions(out / "predictions.csv")
    if before.keys() != after.keys():
        return record("failed", "the CPU evaluation scored other vlogs than the training run")
    diffs = [abs(float(before[k]["probability"]) - float(after[k]["probability"])) for k in before]
    routes = sum(before[k]["relied_on"] != after[k]["relied_on"] for k in before)
    worst = max(diffs, default=0.0)
    ok = worst <= MOVE_TOLERANCE and routes == 0
    summary = (f"{len(diffs)} test vlogs: max |p({ctx.plan.device}) - p(cpu)| = {worst:.2e} "
               f"(tolerance {MOVE_TOLERANCE:.0e}), {routes} routed differently")  # fmt: skip
    return record("passed" if ok else "failed", summary, max_abs_diff=worst,
                  routes_differing=routes, vlogs=len(diffs))  # fmt: skip


# ------------------------------------------------------------------ benchmarks
def run_bench(ctx: Context, timeout: float, name: str) -> dict:
    """``scripts/bench.py`` scan and throughput sections; its JSON lands in ``out``."""
    json_path, md_path = ctx.out / f"{name}.json", ctx.work / f"{name}.md"
    args = [ctx.python, "scripts/bench.py", "--device", ctx.plan.device,
            "--plan", ctx.plan.bench_plan, "--sections", "scan,throughput",
            "--corpus", str(corpus_root(ctx)), "--json", str(json_path),
            "--markdown", str(md_path)]  # fmt: skip
    run = run_command(ctx, args, timeout)
    if not run.ok or not json_path.is_file():
        return failed_command("bench.py", run)
    results = json.loads(json_path.read_text())
    targets = results.get("targets", [])
    met = sum(t["met"] for t in targets)
    summary = f"{run.seconds:.0f} s; targets met {met} of {len(targets)}"
    return record("passed", summary, targets=targets, markdown=md_path.read_text())


def bench(ctx: Context, done: dict, timeout: float) -> dict:
    if done.get("corpus", {}).get("status") != "passed":
        return record("skipped", "no corpus")
    return run_bench(ctx, timeout, "bench")


# ---------------------------------------------- the optional CUDA kernel packages
def source_distribution(ctx: Context, package: str) -> Path | None:
    found = sorted((ctx.bundle / "sdists").glob(f"{package}-*.tar.gz"))
    return found[-1] if found else None


def build_kernels(ctx: Context, done: dict, timeout: float) -> dict:
    """``causal-conv1d`` and ``mamba-ssm`` from their source distributions, for this
    GPU's architecture alone (:mod:`.kernels`), into a folder the later steps put on
    ``PYTHONPATH``. ``*_FORCE_BUILD``: never try to download a prebuilt wheel (no
    network); ``MAX_JOBS``: half the cores, as each nvcc runs four threads."""
    facts = done.get("environment", {}).get("facts", {})
    if ctx.plan.device != "cuda" or not facts.get("capability"):
        return record("skipped", "needs a CUDA device")
    if not facts.get("nvcc"):
        return record("skipped", "needs nvcc")
    sdists = {p: source_distribution(ctx, p) for p in KERNEL_PACKAGES}
    if not all(sdists.values()):
        return record("skipped", f"no source distributions in {ctx.bundle / 'sdists'}")
    target = ctx.work / "kernels"
    compiler_bin = os.path.dirname(facts["nvcc_path"] or "")
    env = {"MAX_JOBS": str(max(1, (os.cpu_count() or 2) // 2)),
           "PATH": os.pathsep.join(filter(None, [compiler_bin, os.environ.get("PATH")])),
           "CAUSAL_CONV1D_FORCE_BUILD": "TRUE", "MAMBA_FORCE_BUILD": "TRUE",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(target),
                                                       os.environ.get("PYTHONPATH")]))}  # fmt: skip
    built = []
    for package, sdist in sdists.items():
        source = unpack_for_arch(sdist, ctx.work / "sources", facts["capability"])
        left = timeout - sum(b["seconds"] for b in built)
        run = run_command(ctx, [ctx.python, "-m", "pip", "install", "--no-build-isolation",
                                "--no-deps", "--no-index", "--no-cache-dir", "--target",
                                str(target), str(source)], left, env=env)  # fmt: skip
        built.append({"package": package, "sdist": sdist.name, "seconds": run.seconds,
                      "ok": run.ok})  # fmt: skip
        if not run.ok:
            return failed_command(f"building {sdist.name}", run, built=built)
    ctx.env["PYTHONPATH"] = env["PYTHONPATH"]
    summary = ", ".join(f"{b['sdist']} in {b['seconds']:.0f} s" for b in built)
    return record("passed", f"built for sm_{facts['capability'].replace('.', '')}: {summary}",
                  built=built)  # fmt: skip


def bench_kernels(ctx: Context, done: dict, timeout: float) -> dict:
    """With the built packages: their CUDA tests, then the scan and throughput again."""
    if done.get("build_kernels", {}).get("status") != "passed":
        return record("skipped", "the packages were not built")
    tests = pytest_cuda(ctx, timeout / 3, "kernel_tests", select="mamba_ssm or causal_conv1d")
    bench_run = run_bench(
        ctx, timeout - tests.get("counts", {}).get("seconds", 0.0), "bench_kernels"
    )
    status = "passed" if tests["status"] == bench_run["status"] == "passed" else "failed"
    return record(status, f"tests: {tests['summary']}; bench: {bench_run['summary']}",
                  tests=tests, bench=bench_run)  # fmt: skip


STEP_FUNCTIONS = {
    "environment": environment, "cuda_tests": cuda_tests, "corpus": corpus,
    "train_32": train_32, "train_bf16": train_bf16, "eval_cpu": eval_cpu, "bench": bench,
    "build_kernels": build_kernels, "bench_kernels": bench_kernels,
}  # fmt: skip
