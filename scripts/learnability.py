#!/usr/bin/env python
"""The learnability benchmark: every model on every cue family, at two corpus sizes.

    python scripts/learnability.py --json logs/learnability.json --markdown logs/learnability.md
    python scripts/learnability.py --quick                       # a few minutes
    python scripts/learnability.py --suite random --draws 20     # the randomised suite
    python scripts/learnability.py --families flat_affect,pauses --sizes dvlog --seeds 10,11 \\
        --models functionals,dynmultidep --variant 'wide=model.d_model=128 model.d_ffn=512'

Corpora are synthetic twins of D-Vlog (its fold sizes, label share and length
distribution, lengths scaled by --length-scale), one per cue family, size and seed
(dynmultidep.data.synthetic.cues). Each model is trained by src/train.py's task,
its checkpoint selected on validation and scored on the test fold. Prints, per
size, test accuracy (mean ± std over seeds) and the detailed scores, then the
targets; --json and --markdown write the same. Results are kept under --work-dir:
rerunning skips finished jobs. --models takes model config names, --variant
LABEL=OVERRIDES a variant (space-separated src/train.py overrides; the model is
dynmultidep unless they say model=...).

--suite random runs the randomised suite instead (dynmultidep.data.synthetic.
random_cues): --draws corpora drawn from a broad prior with --suite-seed (the
report seed 0 by default; make model choices on the development seed 100), each
model trained with each of --seeds (default 0) and scored on the draw's test fold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from dynmultidep.atomic import write_text_atomic
from dynmultidep.bench.tables import markdown_tables, print_tables
from dynmultidep.cli import run_cli
from dynmultidep.data.synthetic import draw_suite
from dynmultidep.learnability.jobs import ModelSpec
from dynmultidep.learnability.plan import FAMILIES, PLANS, SIZES, SUITE_MODELS, SUITE_SEEDS
from dynmultidep.learnability.report import summarize, tables, targets
from dynmultidep.learnability.runner import plan_jobs, run_plan, suite_jobs

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the quick plan (minutes)")
    parser.add_argument("--families", default=None, help=f"comma-separated, of {FAMILIES}")
    parser.add_argument("--sizes", default=None, help=f"comma-separated, of {tuple(SIZES)}")
    parser.add_argument("--models", default=None,
                        help="comma-separated model config names at every size, instead of "
                             "the plan's ('' for none: only the variants)")  # fmt: skip
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=OVERRIDES",
                        help="also run a variant: a label and space-separated src/train.py "
                             "overrides, e.g. 'wide=model.d_model=128' (repeatable)")  # fmt: skip
    parser.add_argument("--seeds", default=None, help="comma-separated integers")
    parser.add_argument("--epochs", type=int, default=None, help="override the plan's epochs")
    parser.add_argument("--length-scale", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2, help="parallel training processes")
    parser.add_argument("--work-dir", default="logs/learnability", help="corpora, runs, results")
    parser.add_argument(
        "--suite",
        choices=("random",),
        default=None,
        help="run the randomised suite instead of the fixed families",
    )
    parser.add_argument("--draws", type=int, default=20, help="suite: corpora to draw")
    parser.add_argument("--suite-seed", type=int, default=SUITE_SEEDS["report"],
                        help=f"suite: seed of the draws (development: "
                             f"{SUITE_SEEDS['development']})")  # fmt: skip
    parser.add_argument("--json", default=None, help="write results and summary here")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    return parser.parse_args(argv)


def choose_plan(args):
    plan = PLANS["quick" if args.quick else "full"]
    changes = {}
    if args.families:
        families = tuple(args.families.split(","))
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise SystemExit(f"error: unknown families {unknown}; use {', '.join(FAMILIES)}")
        changes["families"] = families
    models = dict(plan.models)
    if args.sizes:
        sizes = args.sizes.split(",")
        unknown = sorted(set(sizes) - set(SIZES))
        if unknown:
            raise SystemExit(f"error: unknown sizes {unknown}; use {', '.join(SIZES)}")
        models = {s: models.get(s, next(iter(plan.models.values()))) for s in sizes}
    if args.models is not None:  # '' runs the variants alone
        names = tuple(m.strip() for m in args.models.split(",") if m.strip())
        models = {s: names for s in models}
    models = {s: (*names, *args.variant) for s, names in models.items()}
    changes["models"] = models
    if args.seeds:
        changes["seeds"] = tuple(int(s) for s in args.seeds.split(","))
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.length_scale is not None:
        changes["length_scale"] = args.length_scale
    return replace(plan, **changes)


def markdown(payload: dict) -> str:
    lines = [f"Command: `{payload['command']}`", ""]
    lines += markdown_tables(tables(payload["summary"], payload["targets"]))
    return "\n".join(lines)


def choose_suite_jobs(args) -> list:
    """The suite's jobs: --draws corpora of --suite-seed, the suite's models (or
    --models) and --variant, each trained with every seed of --seeds (default 0)."""
    names = SUITE_MODELS
    if args.models is not None:
        names = tuple(m.strip() for m in args.models.split(",") if m.strip())
    specs = [ModelSpec.parse(m) for m in (*names, *args.variant)]
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else (0,)
    corpora = draw_suite(args.draws, args.suite_seed)
    return suite_jobs(corpora, specs, seeds, args.epochs)


def main(argv=None) -> int:
    args = parse_args(argv)
    console = Console(width=180)
    if args.suite:
        plan = None
        jobs = choose_suite_jobs(args)
        console.print(f"{len(jobs)} jobs (randomised suite: {args.draws} draws of seed "
                      f"{args.suite_seed}), {args.workers} workers")  # fmt: skip
    else:
        plan = choose_plan(args)
        specs = {size: [ModelSpec.parse(m) for m in models]
                 for size, models in plan.models.items()}  # fmt: skip
        jobs = plan_jobs(plan, specs)
        sizes = ", ".join(plan.sizes)
        console.print(f"{len(jobs)} jobs ({len(plan.families)} families, sizes {sizes}, "
                      f"seeds {list(plan.seeds)}), {args.workers} workers")  # fmt: skip
    started = time.perf_counter()

    def progress(result, done, total):
        if result["error"]:
            status = f"failed: {result['error']}"
        else:
            val = result["val"].get("acc", float("nan"))
            status = f"test acc {result['test']['acc']:.3f}, val acc {val:.3f}"
        console.print(f"[{done}/{total}] {result['key']}: {status} ({result['seconds']:.0f} s)")

    results = run_plan(jobs, args.work_dir, CONF_DIR, args.workers, on_result=progress)
    summary = summarize(results)
    payload = {
        "command": " ".join(["python", *sys.argv]),
        "plan": {"suite": args.suite, "draws": args.draws, "suite_seed": args.suite_seed}
        if plan is None else
        {"families": plan.families, "models": plan.models, "seeds": plan.seeds,
         "length_scale": plan.length_scale, "epochs": plan.epochs},
        "seconds": time.perf_counter() - started,
        "summary": summary,
        "targets": targets(summary),
        "results": results,
    }  # fmt: skip
    print_tables(console, tables(summary, payload["targets"]), left=("family", "model", "target"))
    console.print(f"{payload['seconds']:.0f} s")
    if args.json:
        write_text_atomic(args.json, json.dumps(payload, indent=2) + "\n")
    if args.markdown:
        write_text_atomic(args.markdown, markdown(payload))
    failed = sum(1 for r in results if r.get("error"))
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)
