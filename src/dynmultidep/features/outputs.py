"""The files of an extracted corpus, besides ``features.json``.

* each vlog's two arrays, in the layout's paths (:func:`write_vlog`: both or
  neither);
* ``extracted.csv``: ``id,source,bytes,modified_ns,duration,steps,face_found``,
  one row per vlog the folder holds; the source's size and modification time
  tell a re-run whether a finished vlog still comes from the same file;
* ``labels.csv`` in the layout's format, for the labelled vlogs the folder holds.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dynmultidep.atomic import save_array_atomic, write_text_atomic
from dynmultidep.data import dvlog
from dynmultidep.data.corpora import get_corpus
from dynmultidep.data.feature_record import visual_entry
from dynmultidep.data.openface import standardize_rows
from dynmultidep.errors import DataError
from dynmultidep.features.acoustic import DESCRIPTORS
from dynmultidep.features.pipeline import ExtractionSettings, VlogFeatures
from dynmultidep.features.sources import Labelled

log = logging.getLogger(__name__)

INDEX_FILE = "extracted.csv"
INDEX_COLUMNS = ("id", "source", "bytes", "modified_ns", "duration", "steps", "face_found")
LABELS_FILE = "labels.csv"


# ------------------------------------------------------------- one vlog's arrays
def output_paths(out: Path, layout: str, vlog_id: str) -> tuple[Path, Path]:
    spec = get_corpus(layout)
    return spec.audio_path(out, vlog_id), spec.video_path(out, vlog_id)


def is_written(out: Path, layout: str, vlog_id: str) -> bool:
    return all(path.is_file() for path in output_paths(out, layout, vlog_id))


def write_vlog(out: Path, layout: str, vlog_id: str, features: VlogFeatures) -> None:
    """Write one vlog's two arrays (both or neither). D-Vlog: float64 as extracted;
    LMVD: float32, each landmark row standardised as LMVD's preparation does."""
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


# --------------------------------------------------------- features.json entries
def visual_record(layout: str) -> dict:
    """The ``visual`` entry: the 68 landmarks under the layout's column names."""
    if layout == "lmvd":
        return visual_entry(["landmarks"])
    return {"sets": ["landmarks"], "columns": list(dvlog.VIDEO_COLUMNS)}


def audio_record(settings: ExtractionSettings) -> dict:
    if settings.audio == "vggish":
        return {"features": "vggish", "columns": [f"vggish_{i}" for i in range(128)]}
    return {"features": "egemaps_v02_lld", "columns": list(DESCRIPTORS)}


# ----------------------------------------------------------------- extracted.csv
def source_identity(path: Path) -> dict[str, str]:
    """The source file as ``extracted.csv`` records it."""
    stat = path.stat()
    return {
        "source": str(path.resolve()),
        "bytes": str(stat.st_size),
        "modified_ns": str(stat.st_mtime_ns),
    }


def same_source(row: Mapping[str, str] | None, path: Path) -> bool:
    """Whether an ``extracted.csv`` row was extracted from the file at ``path`` as it is."""
    if row is None:
        return False
    identity = source_identity(path)
    return all(row.get(key) == value for key, value in identity.items())


def read_index(out: Path) -> dict[str, dict[str, str]]:
    path = out / INDEX_FILE
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def write_index(out: Path, rows: Mapping[str, Mapping[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, INDEX_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows[i] for i in sorted(rows))
    write_text_atomic(out / INDEX_FILE, buffer.getvalue())


# -------------------------------------------------------------------- labels.csv
def write_labels(
    out: Path,
    layout: str,
    index: Mapping[str, Mapping[str, str]],
    labels: Mapping[str, Labelled] | None,
) -> None:
    """``labels.csv`` for the labelled vlogs the folder holds (``index``): from
    ``labels`` when given, else the rows of the existing ``labels.csv`` whose vlog
    is still there (no file is written for a corpus that never had labels)."""
    path = out / LABELS_FILE
    if labels is None:
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines[1:] if line.split(",", 1)[0] in index]
        write_text_atomic(path, "\n".join([lines[0], *kept]) + "\n")
        return
    unlabelled = sorted(set(index) - set(labels))
    if unlabelled:
        log.warning(
            "%d extracted vlogs have no row in the labels file and are left out of %s "
            "(first: %s)", len(unlabelled), LABELS_FILE, unlabelled[0],
        )  # fmt: skip
    chosen = [labels[i] for i in sorted(index) if i in labels]
    if layout == "dvlog":
        lines = ["index,label,duration,gender,fold"] + [
            f"{v.id},{'depression' if v.label else 'normal'},"
            f"{float(index[v.id]['duration']):.2f},{v.gender or ''},{v.fold}"
            for v in chosen
        ]
    else:
        lines = ["index,label,fold"] + [f"{v.id},{v.label},{v.fold}" for v in chosen]
    write_text_atomic(path, "\n".join(lines) + "\n")
