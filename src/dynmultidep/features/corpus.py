"""Extracting a corpus: many vlog files -> one folder in a corpus layout.

* eGeMAPS audio (the default) writes D-Vlog's released layout::

      {id}/{id}_acoustic.npy  (T, 25)  float64
      {id}/{id}_visual.npy    (T, 136) float64, x0..x67, y0..y67 in pixels
      labels.csv              index,label,duration,gender,fold (with labels)

* VGGish audio writes LMVD's prepared layout (``audio/{id}.npy`` (T_a, 128),
  ``visual/{id}_visual.npy`` (T, 136) with each row standardised, float32,
  ``labels.csv`` ``index,label,fold``).

Beside them, ``features.json`` (settings, versions, columns) and
``extracted.csv`` (``id,source,duration,steps,face_found``, one row per vlog).

Videos are processed independently (in worker processes when ``workers > 1``),
so a vlog's features never depend on the others or on the number of workers.
Every file is written atomically and a vlog's outputs are removed if any of
them fails, so a vlog is either complete or absent. A re-run skips vlogs whose
outputs exist, unless ``force``. A bad file fails alone: its one-line error is
collected and the others go on.
"""

from __future__ import annotations

import csv
import io
import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dynmultidep.atomic import save_array_atomic, write_text_atomic
from dynmultidep.data.corpora import get_corpus
from dynmultidep.data.feature_record import visual_entry, write_feature_record
from dynmultidep.data.openface import standardize_rows
from dynmultidep.errors import DataError
from dynmultidep.features import visual
from dynmultidep.features.acoustic import DESCRIPTORS
from dynmultidep.features.manifest import (
    LAYOUTS,
    MANIFEST_KEY,
    check_manifest,
    manifest,
    versions,
)
from dynmultidep.features.pipeline import ExtractionSettings, Extractor, VlogFeatures
from dynmultidep.features.sources import Labelled

log = logging.getLogger(__name__)

INDEX_FILE = "extracted.csv"
INDEX_COLUMNS = ("id", "source", "duration", "steps", "face_found")


@dataclass(frozen=True)
class Outcome:
    """What became of one video."""

    id: str
    source: str
    status: str  # "extracted" | "skipped" | "failed"
    message: str = ""  # the one-line error of a failed video
    duration: float = 0.0  # seconds of media covered
    steps: int = 0
    face_found: float = 0.0  # share of steps with a face
    seconds: float = 0.0  # wall time spent on it


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_seconds: float = 0.0

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def media_seconds(self) -> float:
        return sum(o.duration for o in self.of("extracted"))

    @property
    def realtime_factor(self) -> float:
        return self.media_seconds / self.wall_seconds if self.wall_seconds > 0 else float("nan")


def output_paths(out: Path, layout: str, vlog_id: str) -> tuple[Path, Path]:
    spec = get_corpus(layout)
    return spec.audio_path(out, vlog_id), spec.video_path(out, vlog_id)


def write_vlog(out: Path, layout: str, vlog_id: str, features: VlogFeatures) -> None:
    """Write one vlog's two arrays (both or neither)."""
    audio_path, video_path = output_paths(out, layout, vlog_id)
    if layout == "dvlog":
        arrays = (features.audio, features.visual)
    else:
        arrays = (
            features.audio.astype(np.float32),
            standardize_rows(features.visual).astype(np.float32),
        )
    try:
        for path, array in zip((audio_path, video_path), arrays, strict=True):
            try:
                save_array_atomic(path, array)
            except OSError as err:
                raise DataError(path, f"cannot write ({err.strerror or err})") from None
    except BaseException:
        remove_vlog(out, layout, vlog_id)
        raise


def remove_vlog(out: Path, layout: str, vlog_id: str) -> None:
    for path in output_paths(out, layout, vlog_id):
        if path.is_file():
            path.unlink()
    if layout == "dvlog":
        folder = out / vlog_id
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


# -------------------------------------------------------------- one video
@dataclass(frozen=True)
class Job:
    id: str
    source: Path
    out: Path
    layout: str


def run_job(
    extractor: Extractor, job: Job, on_step: Callable[[int, int], None] | None = None
) -> Outcome:
    """Extract and write one video; every expected failure becomes a failed outcome."""
    start = time.perf_counter()
    try:
        features = extractor(job.source, on_step)
        write_vlog(job.out, job.layout, job.id, features)
    except DataError as err:
        remove_vlog(job.out, job.layout, job.id)
        return Outcome(job.id, str(job.source), "failed", str(err))
    except Exception as err:  # an extractor bug must not stop the other videos
        remove_vlog(job.out, job.layout, job.id)
        first = (str(err).splitlines() or [""])[0]
        return Outcome(
            job.id, str(job.source), "failed", f"{job.source}: {type(err).__name__}: {first}"
        )
    return Outcome(
        job.id,
        str(job.source),
        "extracted",
        duration=features.duration,
        steps=len(features.visual),
        face_found=float(features.face_found.mean()),
        seconds=time.perf_counter() - start,
    )


_WORKER: dict = {}


def _init_worker(arguments: dict, messages) -> None:
    if arguments["settings"].audio == "vggish":
        import torch

        torch.set_num_threads(1)  # one process per core already
    _WORKER["extractor"] = Extractor(**arguments)
    _WORKER["messages"] = messages


def _worker_job(job: Job) -> Outcome:
    messages = _WORKER["messages"]

    def report(done: int, total: int) -> None:
        messages.put((job.id, done, total))

    return run_job(_WORKER["extractor"], job, report)


# ------------------------------------------------------------ the corpus
def default_workers() -> int:
    """One worker process per two cores: each vlog already keeps two busy (its
    audio in a thread beside frame-threaded decoding and face detection)."""
    return max(1, (os.cpu_count() or 1) // 2)


@dataclass
class Progress:
    """Callbacks a front end (the script's rich display) implements."""

    start_video: Callable[[str], None] = lambda vlog_id: None
    video_step: Callable[[str, int, int], None] = lambda vlog_id, done, total: None
    end_video: Callable[[Outcome], None] = lambda outcome: None


def extract_corpus(
    videos: Sequence[Path],
    out: str | Path,
    settings: ExtractionSettings | None = None,
    labels: dict[str, Labelled] | None = None,
    workers: int = 1,
    force: bool = False,
    predictor: str | Path | None = None,
    vggish_checkpoint: str | Path | None = None,
    vggish_pca: str | Path | None = None,
    progress: Progress | None = None,
) -> Report:
    """Extract ``videos`` into the corpus folder ``out``; see the module docstring."""
    out = Path(out)
    settings = settings or ExtractionSettings()
    progress = progress or Progress()
    layout = LAYOUTS[settings.audio]
    arguments = {
        "settings": settings,
        "predictor": predictor,
        "vggish_checkpoint": vggish_checkpoint,
        "vggish_pca": vggish_pca,
    }
    extractor = Extractor(**arguments)  # loads and checks every model before any work
    checkpoint = Path(vggish_checkpoint) if vggish_checkpoint else None
    wanted = manifest(settings, versions(extractor.landmarks.predictor_path, checkpoint))
    check_manifest(out, wanted)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_feature_record(out, MANIFEST_KEY, wanted)
    except OSError as err:
        raise DataError(out, f"cannot write the corpus here ({err.strerror or err})") from None
    write_feature_record(out, "visual", _visual_entry(layout))
    write_feature_record(out, "audio", _audio_entry(settings))

    report = Report()
    started = time.perf_counter()
    previous = read_index(out)
    jobs = []
    for path in videos:
        job = Job(path.stem, path, out, layout)
        if not force and all(p.is_file() for p in output_paths(out, layout, job.id)):
            skipped = _skipped(job, previous.get(job.id), settings.rate)
            report.outcomes.append(skipped)
            progress.end_video(skipped)
        else:
            jobs.append(job)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            progress.start_video(job.id)
            outcome = run_job(extractor, job, lambda d, t, i=job.id: progress.video_step(i, d, t))
            report.outcomes.append(outcome)
            progress.end_video(outcome)
    else:
        del extractor  # the workers hold their own
        report.outcomes.extend(_run_parallel(jobs, arguments, workers, progress))
    report.wall_seconds = time.perf_counter() - started

    write_index(out, report, previous)
    if labels is not None:
        write_labels(out, layout, report, labels)
    return report


def _skipped(job: Job, row: dict[str, str] | None, rate: float) -> Outcome:
    """A finished vlog's outcome, from its ``extracted.csv`` row or, without one,
    from its visual array."""
    if row is None:
        frames = np.load(output_paths(job.out, job.layout, job.id)[1], mmap_mode="r")
        found = float(np.any(frames != 0, axis=1).mean()) if len(frames) else 0.0
        row = {"duration": len(frames) / rate, "steps": len(frames), "face_found": found}
    return Outcome(
        job.id, str(job.source), "skipped", duration=float(row["duration"]),
        steps=int(row["steps"]), face_found=float(row["face_found"]),
    )  # fmt: skip


def _run_parallel(
    jobs: Sequence[Job], arguments: dict, workers: int, progress: Progress
) -> list[Outcome]:
    context = multiprocessing.get_context("spawn")  # no forked copy of the caller's threads
    messages = context.Queue()
    outcomes = []
    started: set[str] = set()

    def drain() -> None:
        while True:
            try:
                vlog_id, done, total = messages.get_nowait()
            except queue.Empty:
                return
            if vlog_id not in started:
                started.add(vlog_id)
                progress.start_video(vlog_id)
            progress.video_step(vlog_id, done, total)

    with ProcessPoolExecutor(
        min(workers, len(jobs)), context, initializer=_init_worker, initargs=(arguments, messages)
    ) as pool:
        pending = {pool.submit(_worker_job, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            drain()
            for future in done:
                job = pending.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool as err:
                    remove_vlog(job.out, job.layout, job.id)
                    outcome = Outcome(
                        job.id, str(job.source), "failed", f"{job.source}: worker died ({err})"
                    )
                if job.id not in started:
                    progress.start_video(job.id)
                outcomes.append(outcome)
                progress.end_video(outcome)
    return outcomes


# ------------------------------------------------------- corpus files
def _visual_entry(layout: str) -> dict:
    if layout == "lmvd":
        return visual_entry(["landmarks"])
    return {"sets": ["landmarks"], "columns": list(visual.COLUMNS)}


def _audio_entry(settings: ExtractionSettings) -> dict:
    if settings.audio == "vggish":
        return {"features": "vggish", "columns": [f"vggish_{i}" for i in range(128)]}
    return {"features": "egemaps_v02_lld", "columns": list(DESCRIPTORS)}


def read_index(out: Path) -> dict[str, dict[str, str]]:
    path = out / INDEX_FILE
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def write_index(out: Path, report: Report, previous: dict[str, dict[str, str]]) -> None:
    """``extracted.csv``: every vlog the folder holds, this run's rows replacing old ones."""
    rows = dict(previous)
    for o in report.outcomes:
        if o.status == "failed":
            rows.pop(o.id, None)
        elif o.status == "extracted" or o.id not in rows:
            rows[o.id] = {
                "id": o.id, "source": o.source, "duration": f"{o.duration:.2f}",
                "steps": str(o.steps), "face_found": f"{o.face_found:.3f}",
            }  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[i] for i in sorted(rows))
    write_text_atomic(out / INDEX_FILE, buffer.getvalue())


def write_labels(out: Path, layout: str, report: Report, labels: dict[str, Labelled]) -> None:
    """``labels.csv`` in the layout's format, for the labelled vlogs the folder holds."""
    done = {o.id: o for o in report.outcomes if o.status != "failed"}
    unlabelled = sorted(set(done) - set(labels))
    if unlabelled:
        log.warning(
            "%d extracted vlogs have no row in the labels file and are left out of labels.csv "
            "(first: %s)", len(unlabelled), unlabelled[0],
        )  # fmt: skip
    chosen = [labels[i] for i in sorted(done) if i in labels]
    if layout == "dvlog":
        lines = ["index,label,duration,gender,fold"] + [
            f"{v.id},{'depression' if v.label else 'normal'},{done[v.id].duration:.2f},"
            f"{v.gender or ''},{v.fold}"
            for v in chosen
        ]
    else:
        lines = ["index,label,fold"] + [f"{v.id},{v.label},{v.fold}" for v in chosen]
    write_text_atomic(out / "labels.csv", "\n".join(lines) + "\n")
