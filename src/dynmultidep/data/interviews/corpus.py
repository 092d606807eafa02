"""A prepared interview corpus (what :mod:`.prepare` writes), read like any corpus.

Layout (``root/``)::

    labels.csv        index,label,fold,gender,score   (score: PHQ-8 total, 0..24)
    audio/{id}.npy    (T, Da) float32, one row per second
    visual/{id}.npy   (T, Dv) float32
    features.json     the audio and visual columns (:mod:`dynmultidep.data.feature_record`)
"""

from __future__ import annotations

from pathlib import Path

from dynmultidep.data.records import Record, check_unique, index_rows
from dynmultidep.errors import DataError

COLUMNS = ("index", "label", "fold", "gender", "score")
LABELS = {"1": 1, "0": 0}
GENDER_CODES = ("0", "1", "m", "f")  # DAIC-WOZ's codes, E-DAIC's words as m/f


def audio_path(root: Path, session: str) -> Path:
    return root / "audio" / f"{session}.npy"


def video_path(root: Path, session: str) -> Path:
    return root / "visual" / f"{session}.npy"


def find_prepared_sessions(path: Path) -> tuple[Path, list[str]]:
    """``(root, ids)`` of the sessions at ``path``: a prepared folder or one array of it."""
    if path.is_file() and path.suffix == ".npy" and path.parent.name in ("audio", "visual"):
        return path.parent.parent, [path.stem]
    if not path.is_dir():
        return path, []
    return path, sorted(p.stem for p in (path / "audio").glob("*.npy"))


def read_prepared_index(root: str | Path) -> list[Record]:
    """Parse ``root/labels.csv`` of a prepared interview corpus into records."""
    root = Path(root)
    path = root / "labels.csv"
    records = []
    for line, row, session, label, fold in index_rows(path, COLUMNS, LABELS):
        gender = row["gender"] or None
        if gender is not None and gender not in GENDER_CODES:
            raise DataError(path, f"line {line}: unknown gender {gender!r}")
        try:
            score = float(row["score"])
        except ValueError:
            raise DataError(path, f"line {line}: score {row['score']!r} is not a number") from None
        # the split files' Participant_ID: one session per participant in both releases
        records.append(Record(session, label, fold, gender, audio_path(root, session),
                              video_path(root, session), score=score,
                              participant=session))  # fmt: skip
    check_unique(records, path)
    return records
