#!/usr/bin/env python
"""Extract a corpus from vlog video files (see dynmultidep.features.corpus).

    python scripts/extract_features.py --videos DIR_OR_FILES... --out data/my_vlogs \
        [--labels labels.csv] [--workers N] [--force]
    python scripts/extract_features.py --videos DIR --out data/my_lmvd \
        --audio vggish --vggish-checkpoint vggish-10086976.pth

The default writes D-Vlog's released layout (eGeMAPS LLDs and 68 landmarks per
second); ``--audio vggish`` writes LMVD's prepared layout. A labels file is a CSV
``id,label[,gender,fold]`` (id = the video's file stem); without one the corpus
is unlabelled, for ``src/predict.py``. Re-running skips finished vlogs. Exit
status 1 if any video failed (each failure is listed at the end).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dynmultidep.cli import run_cli
from dynmultidep.features.acoustic import UNVOICED
from dynmultidep.features.corpus import Progress as Callbacks
from dynmultidep.features.corpus import default_workers, extract_corpus
from dynmultidep.features.jobs import Outcome
from dynmultidep.features.pipeline import AUDIO_FEATURES, ExtractionSettings
from dynmultidep.features.sources import find_videos, read_labels


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", nargs="+", required=True, help="video files or folders")
    parser.add_argument("--out", required=True, help="corpus folder to write")
    parser.add_argument("--labels", default=None, help="CSV id,label[,gender,fold]")
    parser.add_argument(
        "--workers", type=int, default=default_workers(),
        help="processes (default: one per two cores; each runs audio and video side by side)",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="re-extract finished vlogs")
    parser.add_argument("--audio", choices=AUDIO_FEATURES, default="egemaps")
    parser.add_argument("--rate", type=float, default=1.0, help="steps per second (D-Vlog: 1)")
    parser.add_argument(
        "--unvoiced", choices=UNVOICED, default="exclude",
        help="voiced-only descriptors: average voiced frames only (exclude) or all (include)",
    )  # fmt: skip
    parser.add_argument("--upsample", type=int, default=0, help="face detector upsampling")
    parser.add_argument(
        "--detect-height", type=int, default=0,
        help="scan frames for faces downscaled to at most this height (0: full resolution)",
    )  # fmt: skip
    parser.add_argument("--predictor", default=None, help="dlib 68-point shape predictor file")
    parser.add_argument("--vggish-checkpoint", default=None, help="torchvggish state dict")
    parser.add_argument("--vggish-pca", default=None, help="torchvggish PCA parameters")
    parser.add_argument(
        "--vggish-postprocess", action="store_true", help="PCA-whiten and quantise embeddings"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split without folds")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    return parser.parse_args(argv)


class RichCallbacks(Callbacks):
    """Overall and per-video progress bars."""

    def __init__(self, progress: Progress, total: int):
        super().__init__(self._start, self._step, self._end)
        self.progress = progress
        self.overall = progress.add_task("videos", total=total)
        self.tasks: dict[str, TaskID] = {}

    def _start(self, vlog_id: str) -> None:
        self.tasks[vlog_id] = self.progress.add_task(f"  {vlog_id}", total=None)

    def _step(self, vlog_id: str, done: int, total: int) -> None:
        if vlog_id in self.tasks:
            self.progress.update(self.tasks[vlog_id], completed=done, total=total)

    def _end(self, outcome: Outcome) -> None:
        task = self.tasks.pop(outcome.id, None)
        if task is not None:
            self.progress.remove_task(task)
        if outcome.status == "failed":
            self.progress.console.print(f"[red]failed[/red] {outcome.message}", soft_wrap=True)
        self.progress.advance(self.overall)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = ExtractionSettings(
        audio=args.audio,
        rate=args.rate,
        unvoiced=args.unvoiced,
        upsample=args.upsample,
        detect_height=args.detect_height or None,
        vggish_postprocess=args.vggish_postprocess,
    )
    videos = find_videos(args.videos)
    ratios = (0.7, 0.1, 0.2) if args.audio == "egemaps" else (0.8, 0.1, 0.1)
    labels = read_labels(args.labels, ratios, args.seed) if args.labels else None
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, disable=args.quiet) as progress:
        report = extract_corpus(
            videos,
            args.out,
            settings,
            labels=labels,
            workers=args.workers,
            force=args.force,
            predictor=args.predictor,
            vggish_checkpoint=args.vggish_checkpoint,
            vggish_pca=args.vggish_pca,
            progress=RichCallbacks(progress, len(videos)),
        )
    extracted, skipped, failed = (report.of(s) for s in ("extracted", "skipped", "failed"))
    print(
        f"{args.out}: {len(extracted)} extracted, {len(skipped)} already done, "
        f"{len(failed)} failed; {report.media_seconds:.0f} s of video in "
        f"{report.wall_seconds:.1f} s ({report.realtime_factor:.1f}x real time)"
    )
    low = [o for o in extracted if o.face_found < 0.5]
    if low:
        print(
            f"{len(low)} vlogs have a face in under half of their steps (first: {low[0].id}, "
            f"{100 * low[0].face_found:.0f}%); small faces need --upsample 1",
            file=sys.stderr,
        )
    if failed:
        print(f"{len(failed)} video{'s' if len(failed) > 1 else ''} failed:", file=sys.stderr)
        for outcome in failed:
            print(f"  {outcome.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
