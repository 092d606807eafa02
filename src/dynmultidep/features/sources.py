"""What to extract: the video files given on the command line and their labels.

A vlog's id is its file's stem, kept as a string (``0602.mp4`` -> ``"0602"``).
A labels file is a CSV with header ``id,label[,gender,fold]``: ``label`` is
``depression``/``normal`` or ``1``/``0``, ``gender`` ``m``/``f`` (or empty),
``fold`` ``train``/``valid``/``test``. Without a fold column every labelled
vlog is assigned to a fold by a stratified split.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.data.lmvd_prepare import stratified_split
from dynmultidep.data.records import FOLDS, GENDERS, normalize_gender, parse_choice
from dynmultidep.errors import DataError
from dynmultidep.features.media import VIDEO_SUFFIXES

LABEL_VALUES = {"depression": 1, "normal": 0, "1": 1, "0": 0}


@dataclass(frozen=True)
class Labelled:
    id: str
    label: int  # 1 = depression
    gender: str | None
    fold: str


def find_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """Video files named in ``inputs``: files as given, folders searched
    recursively for :data:`~.media.VIDEO_SUFFIXES`. Ids (stems) must be unique."""
    found: dict[str, Path] = {}
    for given in inputs:
        given = Path(given)
        if given.is_dir():
            paths = sorted(p for p in given.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
            if not paths:
                raise DataError(
                    given, f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder"
                )
        elif given.exists():
            paths = [given]
        else:
            raise DataError(given, "not found")
        for path in paths:
            if path.stem in found and found[path.stem] != path:
                raise DataError(
                    path, f"a second video with id {path.stem!r} (first: {found[path.stem]})"
                )
            found[path.stem] = path
    return list(found.values())


def read_labels(
    path: str | Path, ratios: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0
) -> dict[str, Labelled]:
    """``id -> Labelled`` from a labels file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "labels file not found")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if header[:2] != ["id", "label"] or not set(header[2:]) <= {"gender", "fold"}:
            raise DataError(
                path, f"header {','.join(header) or '(empty)'}; expected id,label[,gender,fold]"
            )
        rows: dict[str, dict[str, str]] = {}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise DataError(path, f"line {line}: {len(row)} fields, expected {len(header)}")
            values = dict(zip(header, (cell.strip() for cell in row), strict=True))
            if not values["id"]:
                raise DataError(path, f"line {line}: empty id")
            if values["id"] in rows:
                raise DataError(path, f"line {line}: id {values['id']!r} is listed twice")
            parse_choice(values["label"].lower(), tuple(LABEL_VALUES), "label", path, line)
            gender = values.get("gender", "")
            if gender:
                try:
                    values["gender"] = normalize_gender(gender)
                except ValueError:
                    parse_choice(gender, GENDERS, "gender", path, line)
            if values.get("fold"):
                parse_choice(values["fold"], FOLDS, "fold", path, line)
            values["line"] = str(line)
            rows[values["id"]] = values
    if not rows:
        raise DataError(path, "no labelled vlogs")
    with_fold = [v["id"] for v in rows.values() if v.get("fold")]
    if with_fold and len(with_fold) < len(rows):
        missing = next(v for v in rows.values() if not v.get("fold"))
        raise DataError(path, f"line {missing['line']}: no fold, while other rows have one")
    labels = {i: LABEL_VALUES[v["label"].lower()] for i, v in rows.items()}
    if with_fold:
        folds = {i: v["fold"] for i, v in rows.items()}
    else:
        folds = stratified_split(
            [Labelled(i, y, None, "") for i, y in labels.items()], ratios, seed
        )
    return {i: Labelled(i, labels[i], v.get("gender") or None, folds[i]) for i, v in rows.items()}
