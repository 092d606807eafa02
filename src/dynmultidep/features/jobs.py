"""One video's extraction job and what became of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.errors import DataError, describe_error
from dynmultidep.features.outputs import remove_vlog, source_identity, write_vlog
from dynmultidep.features.pipeline import Extractor


@dataclass(frozen=True)
class VideoJob:
    id: str
    source: Path
    out: Path
    layout: str


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

    def index_row(self) -> dict[str, str]:
        """Its ``extracted.csv`` row (an extracted vlog's; the source is stat'ed now)."""
        return {
            "id": self.id,
            **source_identity(Path(self.source)),
            "duration": f"{self.duration:.2f}",
            "steps": str(self.steps),
            "face_found": f"{self.face_found:.3f}",
        }


def failed(job: VideoJob, message: str) -> Outcome:
    """A failed outcome; the job's outputs are removed (a vlog is complete or absent)."""
    remove_vlog(job.out, job.layout, job.id)
    return Outcome(job.id, str(job.source), "failed", message)


def run_job(
    extractor: Extractor, job: VideoJob, on_step: Callable[[int, int], None] | None = None
) -> Outcome:
    """Extract and write one video; every expected failure becomes a failed outcome."""
    try:
        features = extractor(job.source, on_step)
        write_vlog(job.out, job.layout, job.id, features)
    except DataError as err:
        return failed(job, str(err))
    except Exception as err:  # an extractor bug must not stop the other videos
        return failed(job, f"{job.source}: {describe_error(err)}")
    return Outcome(
        job.id,
        str(job.source),
        "extracted",
        duration=features.duration,
        steps=len(features.visual),
        face_found=float(features.face_found.mean()),
    )
