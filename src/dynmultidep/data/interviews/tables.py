"""Parsing the releases' frame-level feature files: delimited text of numbers.

The files differ in separator (``,``, ``", "``, ``;``, tabs in copies of some) and
in whether they have a header; a few start each row with a text column (openSMILE's
``name``). Every problem is a one-line :class:`~dynmultidep.errors.DataError` naming
the file: an empty file, the wrong separator, a row cut short (a truncated
download), a field that is not a number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynmultidep.errors import DataError

SEPARATORS = (",", ";", "\t")


@dataclass(frozen=True)
class Table:
    """A parsed file: its header's names (``None`` without one) and its rows."""

    names: tuple[str, ...] | None
    rows: np.ndarray  # (F, D) float64, one row per frame

    def columns(self, names: tuple[str, ...], where: Path) -> np.ndarray:
        """``(F, len(names))``: the named columns, in that order."""
        have = {name: i for i, name in enumerate(self.names or ())}
        missing = [name for name in names if name not in have]
        if missing:
            shown = ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
            raise DataError(where, f"header lacks column(s) {shown} ({len(missing)} missing)")
        return self.rows[:, [have[name] for name in names]]


def detect_separator(line: str) -> str:
    """The separator of a delimited line: the one of :data:`SEPARATORS` it holds most."""
    return max(SEPARATORS, key=line.count)


def parse_table(data: bytes, where: Path, sep: str | None, header: bool, skip: int = 0) -> Table:
    """Parse ``data`` (a file's bytes, ``where`` names it in errors).

    ``sep``: the separator (``None``: detect it from the first line); ``header``: the
    first line names the columns; ``skip``: leading text columns to drop from every row
    (and from the header).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(where, f"not UTF-8 text ({err.reason})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or (header and len(lines) < 2):
        raise DataError(where, "has no rows")
    sep = sep or detect_separator(lines[0])
    names = None
    if header:
        names = tuple(name.strip() for name in lines[0].split(sep))[skip:]
        lines = lines[1:]
    width = len(lines[0].split(sep))
    if width - skip < 2 and any(other in lines[0] for other in SEPARATORS if other != sep):
        raise DataError(where, f"line 1 has no {sep!r} separator: wrong separator?")
    if names is not None and len(names) + skip != width:
        raise DataError(where, f"header names {len(names) + skip} columns, rows have {width}")
    counts = np.fromiter((line.count(sep) for line in lines), np.int64, len(lines))
    ragged = np.flatnonzero(counts != width - 1)
    if ragged.size:
        line = int(ragged[0]) + 1 + header
        cut = " (truncated?)" if ragged[0] == len(lines) - 1 else ""
        raise DataError(
            where, f"line {line}: {counts[ragged[0]] + 1} fields, expected {width}{cut}"
        )
    if skip:
        lines = [line.split(sep, skip)[skip] for line in lines]
    body = " ".join(lines).replace(sep, " ")
    try:
        with warnings.catch_warnings():  # older numpy: a field that is not a number ends
            warnings.simplefilter("error", DeprecationWarning)  # the parse with a warning
            rows = np.fromstring(body, dtype=np.float64, sep=" ")
    except (ValueError, DeprecationWarning):
        rows = None
    if rows is None or rows.size != len(lines) * (width - skip):
        raise DataError(where, f"line {_first_bad(lines, sep) + header}: a field that is "
                        "not a number")  # fmt: skip
    return Table(names, rows.reshape(len(lines), width - skip))


def _first_bad(lines: list[str], sep: str) -> int:
    """The number (from 1) of the first of ``lines`` with a field that is not a number."""
    for number, line in enumerate(lines, 1):
        try:
            [float(field) for field in line.split(sep)]
        except ValueError:
            return number
    return len(lines)
