"""Extracting a corpus: many vlog files -> one folder in a corpus layout.

* eGeMAPS audio (the default) writes D-Vlog's released layout::

      {id}/{id}_acoustic.npy  (T, 25)  float64
      {id}/{id}_visual.npy    (T, 136) float64, x0..x67, y0..y67 in pixels
      labels.csv              index,label,duration,gender,fold (with labels)

* VGGish audio writes LMVD's prepared layout (``audio/{id}.npy`` (T_a, 128),
  ``visual/{id}_visual.npy`` (T, 136) with each row standardised, float32,
  ``labels.csv`` ``index,label,fold``).

Beside them, ``features.json`` (:mod:`.manifest`: settings, model files,
versions, columns) and ``extracted.csv`` (:mod:`.outputs`: one row per vlog).

Videos are processed independently (in worker processes when ``workers > 1``,
:mod:`.workers`), so a vlog's features never depend on the others or on the
number of workers. Every file is written atomically and a failed vlog's outputs
are removed, so a vlog is either complete or absent. A re-run skips vlogs whose
outputs exist and whose source file is unchanged, unless ``force``. A bad file
fails alone: its one-line error is collected and the others go on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dynmultidep.data.feature_record import write_feature_record
from dynmultidep.errors import DataError
from dynmultidep.features.jobs import Outcome, VideoJob, run_job
from dynmultidep.features.manifest import (
    LAYOUTS,
    MANIFEST_KEY,
    check_manifest,
    manifest,
    model_files,
)
from dynmultidep.features.outputs import (
    audio_record,
    is_written,
    read_index,
    same_source,
    visual_record,
    write_index,
    write_labels,
)
from dynmultidep.features.pipeline import ExtractionSettings, Extractor
from dynmultidep.features.sources import Labelled
from dynmultidep.features.workers import run_parallel

log = logging.getLogger(__name__)


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


@dataclass
class Progress:
    """Callbacks a front end (the script's rich display) implements."""

    start_video: Callable[[str], None] = lambda vlog_id: None
    video_step: Callable[[str, int, int], None] = lambda vlog_id, done, total: None
    end_video: Callable[[Outcome], None] = lambda outcome: None


def default_workers() -> int:
    """One worker process per two cores: each vlog already keeps two busy (its
    audio in a thread beside frame-threaded decoding and face detection)."""
    return max(1, (os.cpu_count() or 1) // 2)


def extraction_manifest(
    settings: ExtractionSettings,
    predictor: Path,
    vggish_checkpoint: str | Path | None = None,
    vggish_pca: str | Path | None = None,
) -> dict:
    """The manifest of an extraction with these settings and model files."""
    return manifest(settings, model_files(predictor, vggish_checkpoint, vggish_pca))


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
    wanted = extraction_manifest(
        settings, extractor.landmarks.predictor_path, vggish_checkpoint, vggish_pca
    )
    if not check_manifest(out, wanted):
        try:
            out.mkdir(parents=True, exist_ok=True)
            write_feature_record(out, MANIFEST_KEY, wanted)
        except OSError as err:
            raise DataError(out, f"cannot write the corpus here ({err.strerror or err})") from None
        write_feature_record(out, "visual", visual_record(layout))
        write_feature_record(out, "audio", audio_record(settings))

    report = Report()
    started = time.perf_counter()
    index = read_index(out)
    jobs = []
    for path in videos:
        job = VideoJob(path.stem, path, out, layout)
        row = index.get(job.id)
        if not force and is_written(out, layout, job.id) and same_source(row, path):
            skipped = Outcome(
                job.id, str(path), "skipped", duration=float(row["duration"]),
                steps=int(row["steps"]), face_found=float(row["face_found"]),
            )  # fmt: skip
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
        report.outcomes.extend(run_parallel(jobs, arguments, workers, progress))
    report.wall_seconds = time.perf_counter() - started

    for outcome in report.outcomes:
        if outcome.status == "failed":
            index.pop(outcome.id, None)
        elif outcome.status == "extracted":
            index[outcome.id] = outcome.index_row()
    index = {i: row for i, row in index.items() if is_written(out, layout, i)}
    write_index(out, index)
    write_labels(out, layout, index, labels)
    return report
