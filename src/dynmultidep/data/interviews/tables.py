"""Parsing the releases' frame-level feature files: delimited text of numbers.

The files differ in separator (``,``, ``", "``, ``;``, tabs in copies of some) and
in whether they have a header; a few start each row with a text column (openSMILE's
``name``). Every problem is a one-line :class:`~dynmultidep.errors.DataError` naming
the file: an empty file, the wrong separator, a row cut short (a truncated
download), a field that is not a number.

:func:`parse_table` reads a file with the numba kernel of :mod:`.table_kernel` (a
release's COVAREP file, 90,000 rows of 74 numbers, in a fraction of a second);
:func:`parse_table_reference` is the plain numpy reading it is checked against. A
file the kernel does not take (a byte outside ASCII, a problem in a row, more
unusual numbers than it keeps aside) is read by the reference, which gives the
same values or names the problem.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynmultidep.data.interviews.table_kernel import OK, parse_rows
from dynmultidep.errors import DataError

SEPARATORS = (",", ";", "\t")
BOM = b"\xef\xbb\xbf"
SLOW_FIELDS = 1 << 16  # fields the kernel leaves to Python's float per file
# line breaks (str.splitlines) and blanks (str.strip) that bytes.find and bytes.strip
# do not see: a file whose first lines hold one goes to the reference
_UNUSUAL = (b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")


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
    (and from the header). The same table as :func:`parse_table_reference`, faster.
    """
    table = _parse_fast(data, where, sep, header, skip)
    return table if table is not None else parse_table_reference(data, where, sep, header, skip)


def _layout(lines: list[str], where: Path, sep: str | None, header: bool,
            skip: int) -> tuple[str, tuple[str, ...] | None, int]:  # fmt: skip
    """``(separator, names, fields per row)`` from a file's first non-blank
    ``lines`` (two with a header, else one), or the DataError of a wrong layout."""
    sep = sep or detect_separator(lines[0])
    names = None
    if header:
        names = tuple(name.strip() for name in lines[0].split(sep))[skip:]
    first = lines[1 if header else 0]
    width = len(first.split(sep))
    if width - skip < 2 and any(other in first for other in SEPARATORS if other != sep):
        raise DataError(where, f"line 1 has no {sep!r} separator: wrong separator?")
    if names is not None and len(names) + skip != width:
        raise DataError(where, f"header names {len(names) + skip} columns, rows have {width}")
    return sep, names, width


def _parse_fast(data: bytes, where: Path, sep: str | None, header: bool,
                skip: int) -> Table | None:  # fmt: skip
    """The table read by the kernel, or ``None`` where the reference must read it."""
    buf = np.frombuffer(data, np.uint8)
    start = len(BOM) if data.startswith(BOM) else 0
    if not data.isascii() and not (start and data[start:].isascii()):
        return None
    lines, starts, at = [], [], start
    while len(lines) < 1 + header and at < len(data):
        stop = data.find(b"\n", at)
        stop = len(data) if stop < 0 else stop
        line = data[at:stop].rstrip(b"\r")
        if any(mark in line for mark in _UNUSUAL):
            return None
        if line.strip():
            lines.append(line.decode("ascii"))
            starts.append(at)
        at = stop + 1
    if len(lines) < 1 + header:
        return None  # the reference names an empty file
    sep, names, width = _layout(lines, where, sep, header, skip)
    if len(sep) != 1 or width <= skip:
        return None
    out = np.empty((data.count(b"\n", starts[-1]) + 1, width - skip))
    slow = np.empty((SLOW_FIELDS, 3), np.int64)
    status, rows, n_slow = parse_rows(buf, starts[-1], ord(sep), skip, width, out, slow)
    if status != OK:
        return None
    flat = out.reshape(-1)
    for first, stop, index in slow[:n_slow].tolist():
        flat[index] = float(data[first:stop])
    return Table(names, out[:rows])


def parse_table_reference(data: bytes, where: Path, sep: str | None, header: bool,
                          skip: int = 0) -> Table:  # fmt: skip
    """:func:`parse_table` in plain numpy: the reference the kernel is checked against."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(where, f"not UTF-8 text ({err.reason})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or (header and len(lines) < 2):
        raise DataError(where, "has no rows")
    sep, names, width = _layout(lines[:2], where, sep, header, skip)
    if header:
        lines = lines[1:]
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
