"""The split files of each release: which session is in which fold, with its PHQ-8
labels and gender.

DAIC-WOZ (AVEC 2017), at the release's root::

    train_split_Depression_AVEC2017.csv  Participant_ID,PHQ8_Binary,PHQ8_Score,Gender,PHQ8_* items
    dev_split_Depression_AVEC2017.csv    the same
    test_split_Depression_AVEC2017.csv   participant_ID,Gender          (no labels)
    full_test_split.csv                  Participant_ID,PHQ_Binary,PHQ_Score,Gender  (later)

E-DAIC (AVEC 2019), in ``labels/``::

    train_split.csv, dev_split.csv, test_split.csv
        Participant_ID,Gender,PHQ_Binary,PHQ_Score,PCL-C (PTSD),PTSD Severity

Folds: train -> ``train``, dev -> ``valid``, test -> ``test``. DAIC-WOZ's gender is
a code, 0 or 1 (its users disagree on which is which): it stays ``"0"``/``"1"``.
E-DAIC's is a word, ``male``/``female``, sometimes padded: ``"m"``/``"f"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dynmultidep.data.records import read_table
from dynmultidep.errors import DataError

PHQ8_CUTOFF = 10  # PHQ-8 total at which the binary label is depressed


@dataclass(frozen=True)
class Label:
    """One session listed in a split file."""

    id: str
    fold: str  # "train", "valid" or "test"
    binary: int | None  # None where the split file withholds the labels
    score: float | None
    gender: str | None
    source: Path  # the split file
    line: int


@dataclass(frozen=True)
class SplitFile:
    fold: str
    names: tuple[str, ...]  # file names; the first found is read
    id_column: str
    binary_column: str | None
    score_column: str | None


SPLIT_FILES = {
    "daic_woz": (
        SplitFile("train", ("train_split_Depression_AVEC2017.csv",), "Participant_ID",
                  "PHQ8_Binary", "PHQ8_Score"),
        SplitFile("valid", ("dev_split_Depression_AVEC2017.csv",), "Participant_ID",
                  "PHQ8_Binary", "PHQ8_Score"),
        SplitFile("test", ("full_test_split.csv",), "Participant_ID", "PHQ_Binary",
                  "PHQ_Score"),
        SplitFile("test", ("test_split_Depression_AVEC2017.csv",), "participant_ID", None,
                  None),
    ),
    "edaic": tuple(
        SplitFile(fold, (f"{name}_split.csv",), "Participant_ID", "PHQ_Binary", "PHQ_Score")
        for fold, name in (("train", "train"), ("valid", "dev"), ("test", "test"))
    ),
}  # fmt: skip
_GENDER_WORDS = {"male": "m", "female": "f", "m": "m", "f": "f"}


def find_split_file(release: Path, name: str) -> Path | None:
    """``name`` at the release's root or in one of its folders (``labels/``)."""
    for path in (release / name, *sorted(release.glob(f"*/{name}"))):
        if path.is_file():
            return path
    return None


def read_splits(corpus: str, release: Path) -> list[Label]:
    """Every session the split files of ``corpus`` list. A fold is read from the first
    of its files that exists (DAIC-WOZ's labelled ``full_test_split.csv`` before the
    unlabelled AVEC 2017 test split).

    Raises:
        DataError: no training split file, a malformed file, a bad value, an id listed
            twice.
    """
    labels: list[Label] = []
    done: set[str] = set()
    for split in SPLIT_FILES[corpus]:
        if split.fold in done:
            continue
        path = next(filter(None, (find_split_file(release, n) for n in split.names)), None)
        if path is None:
            if split.fold == "train":
                raise DataError(release / split.names[0], f"split file not found in the "
                                f"{corpus} release")  # fmt: skip
            continue
        done.add(split.fold)
        labels += _read_split(corpus, path, split)
    seen: dict[str, Label] = {}
    for label in labels:
        if label.id in seen:
            raise DataError(label.source, f"line {label.line}: participant {label.id} is also "
                            f"listed in {seen[label.id].source.name}")  # fmt: skip
        seen[label.id] = label
    return labels


def _read_split(corpus: str, path: Path, split: SplitFile) -> list[Label]:
    columns = [split.id_column, "Gender"]
    columns += [c for c in (split.binary_column, split.score_column) if c]
    labels = []
    for line, row in read_table(path, columns):
        session = _integer(row[split.id_column], path, line, split.id_column)
        binary = score = None
        if split.binary_column:
            binary = _integer(row[split.binary_column], path, line, split.binary_column)
            if binary not in ("0", "1"):
                raise DataError(
                    path, f"line {line}: {split.binary_column} {binary!r} is not 0 or 1"
                )
            binary = int(binary)
            score = float(_integer(row[split.score_column], path, line, split.score_column))
            if not 0 <= score <= 24:
                raise DataError(path, f"line {line}: {split.score_column} {score:g} is outside "
                                "the PHQ-8 range 0..24")  # fmt: skip
        labels.append(Label(session, split.fold, binary, score,
                            _gender(corpus, row["Gender"], path, line), path, line))  # fmt: skip
    return labels


def _integer(value: str, path: Path, line: int, column: str) -> str:
    """A whole number as written (``"300"``, ``"300.0"`` -> ``"300"``)."""
    try:
        number = float(value)
    except ValueError:
        raise DataError(path, f"line {line}: {column} {value!r} is not a number") from None
    if number != int(number):
        raise DataError(path, f"line {line}: {column} {value!r} is not a whole number")
    return str(int(number))


def _gender(corpus: str, value: str, path: Path, line: int) -> str | None:
    value = value.strip().lower()
    if not value:
        return None
    if corpus == "daic_woz":
        code = _integer(value, path, line, "Gender")
        if code not in ("0", "1"):
            raise DataError(path, f"line {line}: Gender {value!r} is not the code 0 or 1")
        return code
    if value not in _GENDER_WORDS:
        raise DataError(path, f"line {line}: Gender {value!r} is not male or female")
    return _GENDER_WORDS[value]
