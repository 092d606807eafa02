"""Numba kernel of :mod:`.tables`: the rows of delimited decimal numbers, parsed in
one pass over a file's bytes.

The plain reference is :func:`.tables.parse_table_reference` (numpy's
``fromstring``); the kernel reads the same numbers to the same bits or gives up on
the file, never a different value:

- a field is ``[+-]digits[.digits][(e|E)[+-]digits]`` (digits on at least one side
  of the point) or ``nan``, ``inf``, ``infinity`` in any case, with spaces or tabs
  around it;
- a number of at most 15 significant digits whose decimal exponent lies within
  +-22 is the exact product or quotient of two doubles (the integer of its digits
  and a power of ten, both exact), so one rounding gives the correctly rounded
  value that numpy's ``strtod`` gives; any other number is a *slow field*, whose
  span is returned for Python's ``float`` (also correctly rounded) to read;
- blank lines (spaces and tabs only) are skipped as the reference skips them;
  ``\\r``, ``\\v``, ``\\f`` and ``\\x1c``-``\\x1e`` end a line as they end one in
  Python's ``splitlines``.

Anything else (a row with another number of fields, a field that is not a number,
more rows than ``out`` holds, more slow fields than ``slow`` holds) stops the
kernel with a status; the caller then reads the file with the reference, which
accepts what numpy accepts and names the problem.
"""

from __future__ import annotations

import numba
import numpy as np

OK, BAD_ROW, NO_ROOM = 0, 1, 2  # statuses of parse_rows
EXACT_DIGITS = 15  # below 2**53: the digits' integer is exact in a double
EXACT_POWERS = np.array([10.0**k for k in range(23)])  # 1e0..1e22, each exact
_MAX_DIGITS = 18  # digits gathered into an int64 before a number counts as slow

_NL, _CR, _VT, _FF, _SP, _TAB = 10, 13, 11, 12, 32, 9
_PLUS, _MINUS, _DOT, _ZERO, _NINE = 43, 45, 46, 48, 57


@numba.njit(inline="always")
def _ends_line(c):
    return c == _NL or c == _CR or c == _VT or c == _FF or (28 <= c <= 30)


@numba.njit(inline="always")
def _blank(c, sep):
    return (c == _SP or c == _TAB) and c != sep


@numba.njit(inline="always")
def _word(buf, p, end, word):
    """Whether ``buf[p:]`` starts with the lower-case ASCII ``word`` in any case."""
    if p + len(word) > end:
        return False
    for k in range(len(word)):
        if buf[p + k] | 32 != word[k]:
            return False
    return True


_NAN = np.frombuffer(b"nan", np.uint8).copy()
_INF = np.frombuffer(b"inf", np.uint8).copy()
_INFINITY = np.frombuffer(b"infinity", np.uint8).copy()


@numba.njit(inline="always")
def _number(buf, p, end):
    """Parse the number at ``buf[p]``: ``(value, next position, status)``, status 0
    (read exactly), 1 (a number to read as a slow field) or -1 (not a number)."""
    negative = False
    if p < end and (buf[p] == _MINUS or buf[p] == _PLUS):
        negative = buf[p] == _MINUS
        p += 1
    digits = np.int64(0)
    significant = 0
    shift = 0  # decimal exponent of the last digit kept
    seen = False
    slow = False
    dot = False  # the digits after a point move the decimal exponent down
    while p < end:
        c = buf[p]
        if c == _DOT and not dot:
            dot = True
            p += 1
            continue
        if not _ZERO <= c <= _NINE:
            break
        seen = True
        if digits or c != _ZERO:
            if significant < _MAX_DIGITS:
                digits = digits * 10 + (c - _ZERO)
                significant += 1
                shift -= int(dot)
            else:
                slow = True
        else:
            shift -= int(dot)  # a leading zero: kept out of the digits, but not of the exponent
        p += 1
    if not seen:
        if dot:  # ".nan" is not a number
            return 0.0, p, -1
        sign = -1.0 if negative else 1.0
        if _word(buf, p, end, _INFINITY):
            return sign * np.inf, p + 8, 0
        if _word(buf, p, end, _INF):
            return sign * np.inf, p + 3, 0
        if _word(buf, p, end, _NAN):
            return np.nan, p + 3, 0
        return 0.0, p, -1
    if p < end and (buf[p] | 32) == 101:  # e or E
        p += 1
        exponent_negative = False
        if p < end and (buf[p] == _MINUS or buf[p] == _PLUS):
            exponent_negative = buf[p] == _MINUS
            p += 1
        if not (p < end and _ZERO <= buf[p] <= _NINE):
            return 0.0, p, -1
        exponent = 0
        while p < end and _ZERO <= buf[p] <= _NINE:
            if exponent < 100000:
                exponent = exponent * 10 + (buf[p] - _ZERO)
            else:  # an exponent this long is Python's float's to read
                slow = True
            p += 1
        shift += -exponent if exponent_negative else exponent
    if slow or significant > EXACT_DIGITS:
        return 0.0, p, 1
    value = float(digits)
    if digits == 0:
        value = 0.0
    elif 0 <= shift <= 22:
        value *= EXACT_POWERS[shift]
    elif -22 <= shift < 0:
        value /= EXACT_POWERS[-shift]
    else:
        return 0.0, p, 1
    return (-value if negative else value), p, 0


@numba.njit(cache=True)
def parse_rows(buf, start, sep, skip, width, out, slow):
    """Parse the rows of ``buf[start:]`` (``uint8``) into ``out``.

    ``sep``: the separator's byte; ``skip``: leading fields of each row to pass
    over (text); ``width``: fields per row, ``skip`` included; ``out``: ``(R,
    width - skip)`` float64, ``R`` at least the number of rows; ``slow``: ``(S, 3)``
    int64, filled with ``(start, end, index into out.ravel())`` of each slow field
    (its value in ``out`` is left to the caller). Returns ``(status, rows, slow
    fields)``; on a status other than ``OK`` the rows are not all read.
    """
    end = buf.size
    columns = width - skip
    flat = out.reshape(-1)
    p = start
    row = 0
    n_slow = 0
    while p < end:
        q = p  # a blank line?
        while q < end and (buf[q] == _SP or buf[q] == _TAB or buf[q] == _VT or buf[q] == _FF):
            q += 1
        if q >= end:
            break
        if _ends_line(buf[q]):
            p = q + 1
            continue
        if row >= out.shape[0]:
            return NO_ROOM, row, n_slow
        field = 0
        while True:
            if field < skip:
                while p < end and buf[p] != sep and not _ends_line(buf[p]):
                    p += 1
            else:
                if field >= width:
                    return BAD_ROW, row, n_slow
                while p < end and _blank(buf[p], sep):
                    p += 1
                first = p
                value, p, kind = _number(buf, p, end)
                if kind < 0:
                    return BAD_ROW, row, n_slow
                index = row * columns + field - skip
                flat[index] = value
                if kind == 1:
                    if n_slow >= slow.shape[0]:
                        return NO_ROOM, row, n_slow
                    slow[n_slow, 0] = first
                    slow[n_slow, 1] = p
                    slow[n_slow, 2] = index
                    n_slow += 1
                while p < end and _blank(buf[p], sep):
                    p += 1
            if p < end and buf[p] == sep:
                field += 1
                p += 1
            elif p >= end or _ends_line(buf[p]):
                break
            else:
                return BAD_ROW, row, n_slow
        if field + 1 != width:
            return BAD_ROW, row, n_slow
        row += 1
        p += 1
    return OK, row, n_slow
