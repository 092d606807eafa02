"""The check's report: ``report.json`` (every record) and ``report.md`` (for people and
for BENCHMARKS.md "GPU"), both rewritten after every step, so that a check stopped
at any point still leaves what it measured."""

from __future__ import annotations

import json
from pathlib import Path

from dynmultidep.atomic import write_text_atomic

TRAIN_STEPS = ("train_32", "train_bf16")
BENCH_STEPS = {"bench": "Benchmarks", "bench_kernels": "Benchmarks with the built kernels"}


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(report: dict) -> str:
    steps = report["steps"]
    facts = steps.get("environment", {}).get("facts", {})
    lines = ["# GPU check", ""]
    if facts:
        lines.append(f"Machine: {steps['environment']['summary']}.")
    lines += [f"Command: `{report['command']}`; commit {report['commit']}; "
              f"{report['seconds']:.0f} s of a {report['budget_s']:.0f} s budget.", ""]  # fmt: skip
    rows = [[name, r["status"], _fmt(r.get("seconds"), ".0f"), r["summary"].replace("|", "/")]
            for name, r in steps.items()]  # fmt: skip
    lines += _table(["step", "status", "seconds", "result"], rows) + [""]
    trained = [steps[s] for s in TRAIN_STEPS if steps.get(s, {}).get("status") == "passed"]
    if trained:
        lines += [f"## Training: D-Vlog recipe, synthetic D-Vlog ({report['plan']['preset']})", ""]
        rows = [[t["precision"], ", ".join(f"{s:.3g}" for s in t["epoch_s"]),
                 _fmt(t["steady_epoch_s"], ".3g"), _fmt(t["peak_memory_mib"], ".0f"),
                 f"{t['test_acc']:.3f}", json.dumps(t.get("kernels"))]
                for t in trained]  # fmt: skip
        lines += _table(
            [
                "precision",
                "epochs (s)",
                "after the first (median, s)",
                "peak memory (MiB)",
                "test accuracy",
                "kernels",
            ],
            rows,
        ) + [""]
    targets = [t["target"] for t in trained if "target" in t]
    for name, title in BENCH_STEPS.items():
        bench = steps.get(name, {})
        bench = bench.get("bench", bench)  # bench_kernels nests its benchmark
        targets += bench.get("targets", [])
        if bench.get("markdown"):
            lines += [f"## {title}", "", bench["markdown"].strip(), ""]
    if targets:
        rows = [[t["target"] if "target" in t else t["text"], t["measured"],
                 "yes" if t["met"] else "no"] for t in targets]  # fmt: skip
        lines += ["## Targets", ""] + _table(["target", "measured", "met"], rows) + [""]
    tests = [steps.get("cuda_tests", {}), steps.get("bench_kernels", {}).get("tests", {})]
    failures = [f for t in tests for f in t.get("counts", {}).get("failed", [])]
    if failures:
        lines += ["## Failing CUDA tests", ""]
        lines += [f"- `{f['test']}`: {f['message']}" for f in failures] + [""]
    broken = [(name, r) for name, r in steps.items() if r["status"] == "failed" and r.get("tail")]
    for name, r in broken:
        lines += [f"## {name}: last lines", "", "```", *r["tail"], "```", ""]
    return "\n".join(lines)


def write_reports(out: Path, report: dict) -> None:
    write_text_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(out / "report.md", markdown(report))
