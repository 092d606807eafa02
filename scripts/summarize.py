#!/usr/bin/env python
"""Summarise a multirun: summary.csv, summary.md (and gender heatmaps) in its directory.

    python scripts/summarize.py logs/train/multiruns/2026-11-26_10-00-00

Multiruns of src/train.py do this by themselves when they end; run it by hand on a
sweep that was interrupted, or while one is still running (unfinished jobs are
listed with the failed ones). See dynmultidep.sweeps.summary.
"""

from __future__ import annotations

import argparse

from dynmultidep.cli import run_cli
from dynmultidep.sweeps.summary import write_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep_dir", help="a multirun directory (one subdirectory per job)")
    args = parser.parse_args(argv)
    rows = write_summary(args.sweep_dir)
    print(open(f"{args.sweep_dir}/summary.md", encoding="utf-8").read())
    return 1 if any(row.failed for row in rows) else 0


if __name__ == "__main__":
    run_cli(main)
