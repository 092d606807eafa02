"""LMVD in its prepared layout (see ``scripts/prepare_lmvd.py`` for the release).

Layout (``root/``)::

    labels.csv              index,label,fold      (label 1 = depression)
    audio/{id}.npy          (T_a, 128) VGGish embeddings, one row per 0.96 s
    visual/{id}_visual.npy  (T_v, 136) landmarks x_0..x_67, y_0..y_67 at 1 Hz,
                            each row standardised across its 136 values
    features.json           optional: the visual columns when they are other
                            OpenFace sets (``--visual``; see
                            :mod:`.feature_record`), and then (T_v, D)

LMVD releases no gender: every record has ``gender=None``.
"""

from __future__ import annotations

from pathlib import Path

from dynmultidep.data.openface import LANDMARK_COLUMNS
from dynmultidep.data.records import Record, check_unique, index_rows

AUDIO_DIM = 128
VIDEO_DIM = 136  # without a features.json: the landmarks
VIDEO_COLUMNS = LANDMARK_COLUMNS
COLUMNS = ("index", "label", "fold")
LABELS = {"1": 1, "0": 0}


def audio_path(root: Path, vlog_id: str) -> Path:
    return root / "audio" / f"{vlog_id}.npy"


def video_path(root: Path, vlog_id: str) -> Path:
    return root / "visual" / f"{vlog_id}_visual.npy"


def find_lmvd_vlogs(path: Path) -> tuple[Path, list[str]]:
    """``(root, ids)`` of the vlogs at ``path``: a corpus folder (ids from
    ``audio/`` and ``visual/``) or one feature file of a vlog."""
    if path.is_file() and path.suffix == ".npy":
        if path.parent.name == "audio":
            return path.parent.parent, [path.stem]
        if path.parent.name == "visual" and path.stem.endswith("_visual"):
            return path.parent.parent, [path.stem[: -len("_visual")]]
    if not path.is_dir():
        return path, []
    ids = {p.stem for p in (path / "audio").glob("*.npy")}
    ids |= {p.stem[: -len("_visual")] for p in (path / "visual").glob("*_visual.npy")}
    return path, sorted(ids)


def read_lmvd_index(root: str | Path) -> list[Record]:
    """Parse the prepared ``root/labels.csv`` into records."""
    root = Path(root)
    path = root / "labels.csv"
    records = [
        Record(vlog_id, label, fold, None, audio_path(root, vlog_id), video_path(root, vlog_id))
        for _, _, vlog_id, label, fold in index_rows(path, COLUMNS, LABELS)
    ]
    check_unique(records, path)
    return records
