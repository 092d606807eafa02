"""D-Vlog as released: ``labels.csv`` plus one folder of two arrays per vlog.

Layout (``root/``)::

    labels.csv             index,label,duration,gender,fold
    {id}/{id}_acoustic.npy (T, 25)  eGeMAPS low-level descriptors, 1 row/s
    {id}/{id}_visual.npy   (T, 136) 68 landmarks as x0..x67, y0..y67, 1 row/s
"""

from __future__ import annotations

from pathlib import Path

from dynmultidep.data.records import GENDERS, Record, check_unique, index_rows, parse_choice
from dynmultidep.errors import DataError

AUDIO_DIM = 25
VIDEO_DIM = 136
VIDEO_COLUMNS = tuple(f"x{i}" for i in range(68)) + tuple(f"y{i}" for i in range(68))
COLUMNS = ("index", "label", "duration", "gender", "fold")
LABELS = {"depression": 1, "normal": 0}


def audio_path(root: Path, vlog_id: str) -> Path:
    return root / vlog_id / f"{vlog_id}_acoustic.npy"


def video_path(root: Path, vlog_id: str) -> Path:
    return root / vlog_id / f"{vlog_id}_visual.npy"


def find_dvlog_vlogs(path: Path) -> tuple[Path, list[str]]:
    """``(root, ids)`` of the vlogs at ``path``: a corpus folder, one vlog's
    folder ``{id}/``, or one of its two feature files."""
    for suffix in ("_acoustic.npy", "_visual.npy"):
        if path.is_file() and path.name.endswith(suffix):
            return path.parent.parent, [path.name[: -len(suffix)]]
    if path.is_dir() and audio_path(path.parent, path.name).is_file():
        return path.parent, [path.name]
    if not path.is_dir():
        return path, []
    ids = [d.name for d in path.iterdir()
           if audio_path(path, d.name).is_file() or video_path(path, d.name).is_file()]  # fmt: skip
    return path, sorted(ids)


def read_dvlog_index(root: str | Path) -> list[Record]:
    """Parse ``root/labels.csv`` into records (arrays are not opened)."""
    root = Path(root)
    path = root / "labels.csv"
    records = []
    for line, row, vlog_id, label, fold in index_rows(path, COLUMNS, LABELS):
        try:
            float(row["duration"])
        except ValueError:
            raise DataError(
                path, f"line {line}: duration {row['duration']!r} is not a number"
            ) from None
        # empty: unknown (corpora extracted from a researcher's own videos may not say)
        gender = (
            parse_choice(row["gender"], GENDERS, "gender", path, line) if row["gender"] else None
        )
        records.append(
            Record(
                vlog_id, label, fold, gender, audio_path(root, vlog_id), video_path(root, vlog_id)
            )
        )
    check_unique(records, path)
    return records
