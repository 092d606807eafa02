#!/usr/bin/env python
"""How much faster is the working tree than an earlier commit? The recipe model's
inference (or training step), or the fused selective scan's forward (``scan``) or
forward+backward (``scan-step``), in the channels-last layout or in mamba_ssm's
(``scan-mamba``, ``scan-step-mamba``), timed in alternating processes.

    python scripts/compare_revisions.py 468fb20                  # inference, 32 x 1000
    python scripts/compare_revisions.py 468fb20 --mode step --rounds 2
    python scripts/compare_revisions.py 3fbe24f --mode scan --batch 8 --length 2048

Each round runs the commit (a temporary git worktree, removed afterwards) and then
the working tree, each in a fresh process with an untimed warm-up; the speed-up is
the ratio of the medians of all timed calls. For the model's modes the commit must
have dynmultidep.bench.throughput.recipe_config. See dynmultidep.bench.revisions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from dynmultidep.atomic import write_text_atomic
from dynmultidep.bench.revision_worker import MODES, describe
from dynmultidep.bench.revisions import compare_revisions
from dynmultidep.bench.tables import markdown_tables, print_tables
from dynmultidep.cli import run_cli

REPO = Path(__file__).resolve().parents[1]


def table(report: dict):
    title = (f"{describe(report['mode'])}, batch {report['batch']} x {report['length']} "
             f"steps: {report['rounds']} alternating rounds")  # fmt: skip
    rows = [(r["tree"], f"{r['median_s']:.3f}", f"{r['speedup']:.2f}x", f"{r['fastest_s']:.3f}",
             f"{r['speedup_fastest']:.2f}x", " ".join(f"{t:.2f}" for t in r["times_s"]))
            for r in report["rows"]]  # fmt: skip
    header = ("tree", "median (s)", "speed-up", "fastest (s)", "speed-up (fastest)",
              "timed calls (s)")  # fmt: skip
    return title, header, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the earlier commit (any git revision)")
    parser.add_argument("--mode", choices=MODES, default="inference")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=1000, help="steps per vlog")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two trees")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per process")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    args = parser.parse_args(argv)
    report = compare_revisions(REPO, args.rev, args.mode, args.batch, args.length,
                               args.rounds, args.repeats)  # fmt: skip
    print_tables(Console(width=160), [table(report)], left=("tree", "timed calls (s)"))
    if args.markdown:
        write_text_atomic(args.markdown, "\n".join(markdown_tables([table(report)])))
    return 0


if __name__ == "__main__":
    run_cli(main)
