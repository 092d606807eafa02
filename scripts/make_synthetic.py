#!/usr/bin/env python
"""Write a synthetic twin of D-Vlog or LMVD in the corpus's own file layout.

    python scripts/make_synthetic.py --layout dvlog --preset full --out data/synthetic_dvlog_full
    python scripts/make_synthetic.py --layout lmvd --n 200 --seed 3 --out data/synthetic_lmvd
    python scripts/make_synthetic.py --layout lmvd-release --preset tiny --out /tmp/lmvd_release
    python scripts/make_synthetic.py --layout dvlog --cue flat_affect --n 961 --length-scale 0.125 \
        --out data/synthetic/flat_affect

Prints the counts per fold, label and gender and the length statistics beside
the real corpus's.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from rich.console import Console
from rich.table import Table

from dynmultidep.cli import run_cli
from dynmultidep.data.synthetic import (
    CUE_FAMILIES,
    LAYOUTS,
    PRESETS,
    SyntheticSpec,
    generate_corpus,
)
from dynmultidep.data.synthetic.plan import (
    DVLOG_COUNTS,
    DVLOG_LENGTH_STATS,
    LMVD_COUNTS,
    length_stats,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layout", required=True, choices=LAYOUTS)
    parser.add_argument("--out", required=True, help="folder to create")
    parser.add_argument(
        "--preset",
        default="small",
        choices=list(PRESETS),
        help="full: real corpus size and lengths; small: demos; tiny: tests",
    )
    parser.add_argument(
        "--n", type=int, default=None, help="number of vlogs (overrides the preset)"
    )
    parser.add_argument(
        "--length-scale",
        type=float,
        default=None,
        help="multiplies the real length distribution (overrides the preset)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cue",
        default="bursts",
        choices=CUE_FAMILIES,
        help="what separates the classes (dvlog layout only for all but bursts)",
    )
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = SyntheticSpec(
        args.layout, args.preset, args.n, args.length_scale, args.seed, cue=args.cue
    )
    plan = generate_corpus(spec, args.out, force=args.force)
    console = Console()
    console.print(f"wrote {len(plan)} synthetic vlogs ({args.layout} layout) to {args.out}")

    reference = DVLOG_COUNTS if args.layout == "dvlog" else LMVD_COUNTS
    counts = Counter((v.fold, v.label, v.gender) for v in plan)
    table = Table(title="vlogs per fold, label and gender")
    for column in ("fold", "label", "gender", "count", "real corpus"):
        table.add_column(column, justify="right" if column in ("count", "real corpus") else "left")
    for key, real in reference.items():
        fold, label, gender = key
        table.add_row(
            fold,
            "depression" if label else "normal",
            gender or "-",
            str(counts.get(key, 0)),
            str(real),
        )
    console.print(table)

    stats = length_stats(np.array([v.length for v in plan]))
    table = Table(title="length in steps (shorter modality)")
    table.add_column("statistic")
    table.add_column("synthetic", justify="right")
    table.add_column("D-Vlog", justify="right")
    table.add_column("ratio", justify="right")
    for name, real in DVLOG_LENGTH_STATS.items():
        table.add_row(name, f"{stats[name]:.0f}", str(real), f"{stats[name] / real:.3f}")
    console.print(table)
    if spec.resolved()["length_scale"] != 1.0 or args.layout != "dvlog":
        console.print("(lengths are scaled: compare ratios with the scale, not with 1)")
    return 0


if __name__ == "__main__":
    run_cli(main)
