"""The GPU check's steps in order, within its time budget.

Each step gets the time left less what the required steps after it are expected to
take (:data:`.plan.CheckPlan.estimates_s`); a step that would get less than a quarter
of its own estimate is skipped ("no time left"), and the optional steps (the build of
the CUDA kernel packages and the timings with them) run only when their whole
estimate fits beside the later ones'. On a GPU a whole check rarely leaves that much:
``--steps build_kernels,bench_kernels`` is then a second run. A step that raises is
recorded as failed and the next one runs. The reports are rewritten after every step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from dynmultidep.gpu_check.plan import NEEDS, OPTIONAL_STEPS, STEPS, CheckPlan
from dynmultidep.gpu_check.process import Context
from dynmultidep.gpu_check.report import write_reports
from dynmultidep.gpu_check.steps import STEP_FUNCTIONS, record
from dynmultidep.tasks.run.runinfo import git_commit


def with_needs(steps: Sequence[str]) -> list[str]:
    """``steps`` with the environment, every step they need (:data:`.plan.NEEDS`),
    in the check's order."""
    wanted = {"environment", *steps}
    while True:
        more = {need for step in wanted for need in NEEDS.get(step, ())} - wanted
        if not more:
            return [s for s in STEPS if s in wanted]
        wanted |= more


def time_for(plan: CheckPlan, steps: Sequence[str], index: int, remaining: float) -> float:
    """Seconds step ``steps[index]`` may take, keeping the estimates of the later required
    steps (and, for an optional step, of the later optional ones too)."""
    optional = steps[index] in OPTIONAL_STEPS
    later = [s for s in steps[index + 1 :] if optional or s not in OPTIONAL_STEPS]
    return remaining - sum(plan.estimates_s[s] for s in later)


def run_check(
    plan: CheckPlan, repo: Path, out: Path, work: Path, python: str, bundle: Path,
    steps: Sequence[str] = STEPS, command: str = "",
) -> dict:  # fmt: skip
    """Run ``steps`` of ``plan`` (and the steps they need); write ``report.json`` and
    ``report.md`` into ``out``."""
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown steps {', '.join(unknown)}; use {', '.join(STEPS)}")
    steps = with_needs(steps)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report = {"command": command, "commit": git_commit(repo), "plan": asdict(plan),
              "budget_s": plan.budget_s, "seconds": 0.0, "steps": {}}  # fmt: skip
    with open(out / "check.log", "a") as log:
        ctx = Context(plan, repo, out, work, python, bundle, started + plan.budget_s, log)
        for index, name in enumerate(steps):
            allowed = time_for(plan, steps, index, ctx.remaining())
            estimate = plan.estimates_s[name]
            ctx.say(f"[{index + 1}/{len(steps)}] {name} ({max(allowed, 0):.0f} s available)")
            step_start = time.monotonic()
            if allowed < (estimate if name in OPTIONAL_STEPS else estimate / 4):
                result = record("skipped", f"no time left: {max(allowed, 0):.0f} s of the "
                                f"{estimate:.0f} s it needs")  # fmt: skip
            else:
                try:
                    result = STEP_FUNCTIONS[name](ctx, report["steps"], allowed)
                except Exception as err:  # the report names it; the next step still runs
                    result = record("failed", f"{type(err).__name__}: {err}")
            result["seconds"] = time.monotonic() - step_start
            report["steps"][name] = result
            report["seconds"] = time.monotonic() - started
            ctx.say(f"  -> {result['status']}: {result['summary']}")
            write_reports(out, report)
        report["failed"] = [n for n, r in report["steps"].items() if r["status"] == "failed"]
        write_reports(out, report)
        ctx.say(f"GPU check: {len(report['failed'])} step(s) failed "
                f"({', '.join(report['failed']) or 'none'}); report in {out}")  # fmt: skip
    return report
