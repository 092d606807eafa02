#!/usr/bin/env python
"""Is model B better than model A on the same test vlogs, beyond chance?

    python scripts/compare.py logs/train/runs/<A> logs/train/runs/<B>
    python scripts/compare.py logs/train/multiruns/<kfold A> logs/train/multiruns/<kfold B>
    python scripts/compare.py SWEEP SWEEP --select-a kfold.select_on_test=false \\
        --select-b kfold.select_on_test=true --json cmp.json --markdown cmp.md

A and B are run directories (predictions.csv) or sweep directories (one job per fold
or seed, paired by fold or seed). Prints B - A for accuracy, F1 and AUROC with paired
bootstrap intervals, McNemar's exact test and, over folds or seeds, a sign-flip test.
Runs whose test vlogs differ are refused (exit status 2). See
dynmultidep.sweeps.compare.
"""

from __future__ import annotations

import argparse

from dynmultidep.atomic import write_text_atomic
from dynmultidep.cli import run_cli
from dynmultidep.sweeps.compare import (
    compare,
    comparison_json,
    comparison_markdown,
    print_comparison,
    read_side,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", help="run or sweep directory of model A")
    parser.add_argument("b", help="run or sweep directory of model B")
    parser.add_argument("--select-a", help="overrides A's jobs must have (one configuration)")
    parser.add_argument("--select-b", help="overrides B's jobs must have (one configuration)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seeds the bootstrap")
    parser.add_argument("--json", metavar="FILE", help="also write the comparison as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="also write it as Markdown")
    args = parser.parse_args(argv)
    report = compare(read_side(args.a, args.select_a), read_side(args.b, args.select_b),
                     resamples=args.resamples, seed=args.seed)  # fmt: skip
    print_comparison(report)
    if args.json:
        write_text_atomic(args.json, comparison_json(report))
    if args.markdown:
        write_text_atomic(args.markdown, comparison_markdown(report))
    return 0


if __name__ == "__main__":
    run_cli(main)
