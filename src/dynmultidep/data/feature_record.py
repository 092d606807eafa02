"""What a corpus's feature columns are: the record ``features.json`` at its root.

::

    {"visual": {"sets": ["landmarks", "gaze"],
                "columns": ["x_0", ..., "y_67", "gaze_0_x", ..., "gaze_angle_y"]}}

``scripts/prepare_lmvd.py`` writes the ``visual`` key (:mod:`.lmvd_prepare`);
the feature extractor writes the same file with more keys (``audio``,
``extraction``, ...). Readers ignore the keys they do not know, and a writer of
one key keeps the others. A corpus without a record (or whose record has no
visual columns) has its layout's documented columns: D-Vlog's ``x0..x67,
y0..y67``, prepared LMVD's OpenFace ``x_0..x_67, y_0..y_67``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from dynmultidep.atomic import write_text_atomic
from dynmultidep.data.corpora import CorpusSpec, get_corpus
from dynmultidep.data.openface import parse_visual_sets, visual_columns
from dynmultidep.errors import DataError

FEATURE_RECORD = "features.json"


def read_feature_record(root: str | Path) -> dict | None:
    """The record of the corpus at ``root``; ``None`` if it has none."""
    path = Path(root) / FEATURE_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(path, f"not a readable JSON file ({err})") from None
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, found {type(record).__name__}")
    return record


def write_feature_record(root: str | Path, key: str, value: dict | None) -> dict:
    """Set (``None``: remove) one top-level key of the record at ``root``, keeping
    the others; the file is replaced atomically. Returns the record written."""
    record = read_feature_record(root) or {}
    if value is None:
        record.pop(key, None)
    else:
        record[key] = value
    write_text_atomic(Path(root) / FEATURE_RECORD, json.dumps(record, indent=2) + "\n")
    return record


def visual_entry(sets: Sequence[str]) -> dict:
    """The ``visual`` value for OpenFace feature sets: their names and columns."""
    sets = parse_visual_sets(sets)
    return {"sets": list(sets), "columns": list(visual_columns(sets))}


def recorded_visual_columns(root: str | Path) -> tuple[str, ...] | None:
    """``visual.columns`` of the record at ``root``; ``None`` if not recorded."""
    visual = (read_feature_record(root) or {}).get("visual")
    if visual is None or (isinstance(visual, dict) and "columns" not in visual):
        return None
    columns = visual.get("columns") if isinstance(visual, dict) else None
    if (
        not isinstance(columns, list)
        or not columns
        or not all(isinstance(c, str) and c for c in columns)
        or len(set(columns)) != len(columns)
    ):
        raise DataError(
            Path(root) / FEATURE_RECORD, "visual.columns must be a list of distinct column names"
        )
    return tuple(columns)


def corpus_visual_columns(root: str | Path, corpus: str | CorpusSpec) -> tuple[str, ...]:
    """The visual columns of the corpus at ``root``: the record's, or the layout's."""
    spec = get_corpus(corpus) if isinstance(corpus, str) else corpus
    return recorded_visual_columns(root) or spec.video_columns


def recorded_video_dim(root: str | Path, default: int) -> int:
    """How many visual columns the record at ``root`` names; ``default`` where
    there is no folder, no record or no readable visual entry. Config resolution
    uses it (``${corpus_video_dim:...}``); the DataModule reports a bad record."""
    try:
        columns = recorded_visual_columns(root)
    except DataError:
        columns = None
    return len(columns) if columns else int(default)
