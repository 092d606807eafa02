"""LMVD in its prepared layout (see ``scripts/prepare_lmvd.py`` for the release).

Layout (``root/``)::

    labels.csv              index,label,fold      (label 1 = depression)
    audio/{id}.npy          (T_a, 128) VGGish embeddings, one row per 0.96 s
    visual/{id}_visual.npy  (T_v, 136) landmarks x_0..x_67, y_0..y_67 at 1 Hz,
                            each row standardised across its 136 values

LMVD releases no gender: every record has ``gender=None``.
"""

from __future__ import annotations

from pathlib import Path

from dynmultidep.data.records import FOLDS, Record, check_unique, parse_choice, read_table
from dynmultidep.errors import DataError

AUDIO_DIM = 128
VIDEO_DIM = 136
COLUMNS = ("index", "label", "fold")
LABELS = {"1": 1, "0": 0}


def audio_path(root: Path, vlog_id: str) -> Path:
    return root / "audio" / f"{vlog_id}.npy"


def video_path(root: Path, vlog_id: str) -> Path:
    return root / "visual" / f"{vlog_id}_visual.npy"


def read_lmvd_index(root: str | Path) -> list[Record]:
    """Parse the prepared ``root/labels.csv`` into records."""
    root = Path(root)
    path = root / "labels.csv"
    records = []
    for line, row in read_table(path, COLUMNS):
        vlog_id = row["index"]
        if not vlog_id:
            raise DataError(path, f"line {line}: empty index")
        label = parse_choice(row["label"], tuple(LABELS), "label", path, line)
        records.append(
            Record(
                id=vlog_id,
                label=LABELS[label],
                fold=parse_choice(row["fold"], FOLDS, "fold", path, line),
                gender=None,
                audio_path=audio_path(root, vlog_id),
                video_path=video_path(root, vlog_id),
            )
        )
    check_unique(records, path)
    return records
