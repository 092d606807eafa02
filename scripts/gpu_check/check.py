#!/usr/bin/env python
"""The GPU check (``scripts/gpu_check/run.sh`` calls this): every CUDA path of the
project, run and measured in one go; reports under OUT.

    python scripts/gpu_check/check.py --out logs/gpu_check                 # on a GPU
    python scripts/gpu_check/check.py --out /tmp/check --device cpu        # tiny, no GPU
    python scripts/gpu_check/check.py --out logs/gpu_check --steps build_kernels,bench_kernels

Steps (dynmultidep.gpu_check): environment, cuda_tests (pytest -m cuda), corpus
(the synthetic D-Vlog), train_32 and train_bf16 (src/train.py, D-Vlog recipe),
eval_cpu (the fp32 checkpoint evaluated on the CPU against the training run's
predictions), bench (scripts/bench.py scan and throughput), and, when time is left,
build_kernels (causal-conv1d and mamba-ssm for this GPU alone) and bench_kernels.
Writes OUT/report.json, OUT/report.md, OUT/check.log and OUT/bench*.json; exits 1
when a step failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from dynmultidep.cli import run_cli
from dynmultidep.gpu_check.plan import PLANS, STEPS
from dynmultidep.gpu_check.runner import run_check

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="the report folder")
    parser.add_argument("--device", choices=sorted(PLANS), default="cuda",
                        help="cuda: the real check; cpu: the same steps at tiny sizes")  # fmt: skip
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--bundle", default=str(REPO / ".gpu_check"),
                        help="what prepare.sh made (sdists/ of the kernel packages)")  # fmt: skip
    parser.add_argument("--steps", default=",".join(STEPS), help=f"of {', '.join(STEPS)}")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole check (default: the plan's)")  # fmt: skip
    args = parser.parse_args(argv)
    plan = PLANS[args.device]
    if args.budget is not None:
        plan = replace(plan, budget_s=args.budget)
    steps = [s for s in args.steps.split(",") if s]
    command = " ".join(["check.py", *(argv if argv is not None else sys.argv[1:])])
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch:
        work = Path(args.work) if args.work else Path(scratch)
        report = run_check(plan, REPO, Path(args.out), work, sys.executable,
                           Path(args.bundle), steps, command)  # fmt: skip
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    run_cli(main)
