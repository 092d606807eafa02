"""Index entries of a corpus and the ``labels.csv`` parsing both corpora share.

Ids are strings everywhere: D-Vlog ids are folder names, LMVD ids carry
meaningful leading zeros (``"001"`` and ``"0602"`` are different vlogs).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.errors import DataError

FOLDS = ("train", "valid", "test")
GENDERS = ("m", "f")
_GENDER_ALIASES = {
    "both": None,
    "all": None,
    "m": "m",
    "male": "m",
    "f": "f",
    "female": "f",
    "0": "0",  # DAIC-WOZ's gender codes, read as codes (its users disagree on which is which)
    "1": "1",
}


@dataclass(frozen=True)
class Record:
    """One vlog listed in a corpus index (no features loaded yet)."""

    id: str
    label: int  # 1 = depression (positive class), 0 = normal
    fold: str  # one of FOLDS
    gender: str | None  # "m", "f", or None where the corpus has no gender
    audio_path: Path
    video_path: Path
    # PHQ-8 total (0..24) where the corpus gives one (the interview corpora), else None
    score: float | None = None
    # the person, where a corpus has several sessions of one (k-fold keeps them together)
    participant: str | None = None


def normalize_gender(value: str | None) -> str | None:
    """Map a gender selection to ``"m"``, ``"f"`` or ``None`` (= both).

    Accepts ``both``/``all``/``None``, ``m``/``male`` and ``f``/``female``, and
    DAIC-WOZ's gender codes ``0`` and ``1`` as they are.
    """
    if value is None:
        return None
    key = str(value).strip().lower()
    if key not in _GENDER_ALIASES:
        raise ValueError(
            f"unknown gender selection {value!r}; use both, m (male), f (female), "
            "or DAIC-WOZ's codes 0 and 1"
        )
    return _GENDER_ALIASES[key]


def read_table(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row of a CSV index.

    The header must name every column in ``columns`` (extra columns are
    ignored); values are stripped strings, never converted to numbers.
    """
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            missing = [name for name in columns if name not in header]
            if missing:
                raise DataError(
                    path,
                    f"header {','.join(header) or '(empty)'} lacks column(s) "
                    f"{', '.join(missing)}; expected {','.join(columns)}",
                )
            where = {name: header.index(name) for name in columns}
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                line = reader.line_num
                if len(row) < len(header):
                    raise DataError(path, f"line {line}: {len(row)} fields, expected {len(header)}")
                yield line, {name: row[i].strip() for name, i in where.items()}
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text ({err.reason})") from None


def index_rows(
    path: Path, columns: Sequence[str], labels: dict[str, int]
) -> Iterator[tuple[int, dict[str, str], str, int, str]]:
    """``(line, row, id, label, fold)`` for each row of a corpus index, with
    the id, label and fold checked; corpus-specific columns stay in ``row``."""
    for line, row in read_table(path, columns):
        vlog_id = row["index"]
        if not vlog_id:
            raise DataError(path, f"line {line}: empty index")
        label = parse_choice(row["label"], tuple(labels), "label", path, line)
        fold = parse_choice(row["fold"], FOLDS, "fold", path, line)
        yield line, row, vlog_id, labels[label], fold


def parse_choice(value: str, allowed: Sequence[str], what: str, path: Path, line: int) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a DataError."""
    if value not in allowed:
        raise DataError(
            path, f"line {line}: unknown {what} {value!r} (expected one of {', '.join(allowed)})"
        )
    return value


def check_unique(records: Sequence[Record], path: Path) -> None:
    """Refuse an index that lists the same id twice."""
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise DataError(path, f"id {record.id!r} is listed more than once")
        seen.add(record.id)
    if not records:
        raise DataError(path, "lists no vlogs")


def select_records(
    records: Sequence[Record],
    fold: str,
    gender: str | None,
    index_path: Path,
    ids: set[str] | None = None,
) -> list[Record]:
    """The records of one fold and gender (``gender=None`` keeps both); with ``ids``,
    the fold is those vlogs instead of the index's ``fold`` column (k-fold splits).

    Raises:
        DataError: when the selection is empty.
    """
    if fold not in FOLDS:
        raise ValueError(f"unknown fold {fold!r}; use one of {', '.join(FOLDS)}")
    in_fold = (lambda r: r.fold == fold) if ids is None else (lambda r: r.id in ids)
    chosen = [r for r in records if in_fold(r) and (gender is None or r.gender == gender)]
    if not chosen:
        who = "both genders" if gender is None else f"gender {gender!r}"
        raise DataError(index_path, f"no vlogs in fold {fold!r} for {who}")
    return chosen
