#!/usr/bin/env python
"""Prepare the LMVD release for training (see dynmultidep.data.lmvd_prepare).

    python scripts/prepare_lmvd.py --release /path/to/LMVD --out data/lmvd \
        --split-file lmvd_labels.csv          # the common 8:1:1 split
    python scripts/prepare_lmvd.py --release /path/to/LMVD --out data/lmvd \
        --seed 0 --ratios 0.8 0.1 0.1          # a new stratified split
    python scripts/prepare_lmvd.py --release /path/to/LMVD --out data/lmvd_all \
        --split-file lmvd_labels.csv --visual landmarks,aus,gaze,pose

--visual names the OpenFace feature sets of the visual arrays, side by side in
the order given: landmarks (136, each row standardised; the default), aus (35),
gaze (8), pose (6). The prepared folder records them in features.json, which
sets dataset.video_dim. Re-running skips vlogs whose outputs exist and refuses
a folder prepared with other sets (``--force`` redoes everything).
"""

from __future__ import annotations

import argparse

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from dynmultidep.cli import run_cli
from dynmultidep.data.lmvd_prepare import prepare_lmvd
from dynmultidep.data.openface import VISUAL_SETS, parse_visual_sets


def visual_sets(text: str) -> tuple[str, ...]:
    try:
        return parse_visual_sets(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--release", required=True, help="folder with Audio_feature/, Video_feature/, label/"
    )
    parser.add_argument("--out", required=True, help="prepared corpus folder")
    parser.add_argument("--split-file", default=None, help="CSV with header index,label,fold")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    parser.add_argument(
        "--ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VALID", "TEST")
    )
    parser.add_argument(
        "--visual",
        type=visual_sets,
        default=("landmarks",),
        metavar="SET[,SET...]",
        help=f"OpenFace feature sets of the visual arrays, in order: {', '.join(VISUAL_SETS)} "
        "(default: landmarks)",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes parsing CSVs")
    parser.add_argument("--force", action="store_true", help="rewrite existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    columns = (
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=args.quiet) as progress:
        task = progress.add_task("preparing LMVD", total=None)
        counts = prepare_lmvd(
            args.release,
            args.out,
            split_file=args.split_file,
            seed=args.seed,
            ratios=args.ratios,
            force=args.force,
            workers=args.workers,
            visual=args.visual,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    print(
        f"{args.out}: {counts['written']} vlogs written, {counts['skipped']} already done "
        f"(visual: {','.join(args.visual)}); "
        f"train {counts['train']}, valid {counts['valid']}, test {counts['test']}"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
