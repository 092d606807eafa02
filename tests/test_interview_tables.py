"""The numba table kernel against the numpy reference: the same names and bits on
every file the reference reads, the same message on every file it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dynmultidep.data.interviews import tables
from dynmultidep.data.interviews.table_kernel import OK, parse_rows
from dynmultidep.data.interviews.tables import _parse_fast, parse_table, parse_table_reference
from dynmultidep.data.synthetic.interviews import (
    InterviewTwinSpec,
    daic_files,
    edaic_files,
    plan_sessions,
)
from dynmultidep.errors import DataError

WHERE = Path("x.csv")


def _same(data: bytes, sep: str | None = None, header: bool = False, skip: int = 0,
          fast: bool = True) -> tables.Table:  # fmt: skip
    """Parse ``data`` both ways, check they agree, and return the table; ``fast``:
    whether the kernel itself (not the reference behind it) must have read it."""
    reference = parse_table_reference(data, WHERE, sep, header, skip)
    if fast:
        table = _parse_fast(data, WHERE, sep, header, skip)
        assert table is not None, "the kernel gave the file to the reference"
    else:
        table = parse_table(data, WHERE, sep, header, skip)
    assert table.names == reference.names
    assert table.rows.shape == reference.rows.shape
    assert table.rows.dtype == np.float64
    assert np.array_equal(table.rows.view(np.int64), reference.rows.view(np.int64)) or (
        np.array_equal(table.rows, reference.rows, equal_nan=True)
        and np.array_equal(np.signbit(table.rows), np.signbit(reference.rows))
    ), "values differ"
    return table


@pytest.mark.parametrize("fmt", ["%.5g", "%.6f", "%.17g", "%.3e", "%.9E", "%d", "%.15g"])
@pytest.mark.parametrize("sep", [",", ", ", ";", "\t"])
def test_random_numbers_agree_to_the_bit(fmt, sep):
    rng = np.random.default_rng(len(fmt) + len(sep))
    values = rng.normal(0, 1, (200, 7)) * 10.0 ** rng.integers(-30, 30, (200, 7))
    values[::9, 2] = 0.0
    values[::11, 3] = -0.0
    if fmt == "%d":
        values = np.round(values / 10.0 ** rng.integers(0, 25, values.shape))
    body = "\n".join(sep.join(fmt % v for v in row) for row in values) + "\n"
    table = _same(body.encode(), sep.strip() if sep.strip() else sep)
    assert table.rows.shape == (200, 7)


@pytest.mark.parametrize(
    "text",
    [
        "1,2\n3,4",  # no final line break
        "1,2\r\n3,4\r\n",  # CRLF
        "\n\n1,2\n  \n3,4\n\n",  # blank lines
        " 1 , 2 \n\t3\t,4\n",  # blanks around fields
        "+1.,-.5\n1e5,1E-5\n",  # signs, bare points, exponents
        "1e+022,1e-22\n1e23,1e-23\n",  # the exact powers' edges and beyond
        "123456789012345,0.000000000000001234\n1234567890123456,0.1234567890123456789\n",
        "nan,-nan\nInf,-Infinity\n",
        "0,-0\n-0.0,0e10\n",
        "1e400,-1e400\n1e-400,4.9e-324\n",  # overflow to inf, underflow to 0, subnormal
        "00012.5000,-000.00\n7,8\n",
        "12345678901234567890123,1.00000000000000000000001\n1,2\n",
    ],
)
def test_edge_cases_agree(text):
    _same(text.encode())


def test_an_exponent_too_long_to_gather_is_left_to_python():
    # leading zeros bring the decimal shift back within the exact powers' range: the
    # exponent's digits past what the kernel gathers must not be dropped
    _same(b"0." + b"0" * 99999 + b"1e1000000,1\n2,3\n")
    _same(b"1e" + b"0" * 200000 + b"5,1\n2,3\n")


def test_headers_skipped_columns_and_a_bom_agree():
    _same(b"a, b, c\n1, 2, 3\n4, 5, 6\n", ",", header=True)
    _same(b"name;t;x\n'unknown';0.0;1.5\n'unknown';0.01;2.5\n", ";", header=True, skip=1)
    _same(b"f.wav,0,1,2\nf.wav,1,3,4\n", None, skip=1)
    _same(b"\xef\xbb\xbfa,b\n1,2\n", ",", header=True)


def test_files_the_kernel_leaves_to_the_reference_are_read_alike():
    for text in (
        "0x1p3,2\n3,4\n",
        "1,2\r3,4\r",
        "\x0b1,2\n3,4\n",
        "1_0,2\n3,4\n",
        ".nan,1\n2,3\n",
        "-.inf,1\n2,3\n",
        "+.Infinity,1\n2,3\n",
    ):
        data = text.encode()
        assert _parse_fast(data, WHERE, ",", False, 0) is None, text
        try:
            parse_table_reference(data, WHERE, ",", False)
        except DataError as refused:
            with pytest.raises(DataError) as also:
                parse_table(data, WHERE, ",", False)
            assert str(also.value) == str(refused)
        else:
            _same(data, ",", fast=False)
    assert _parse_fast("é,1\n2,3\n".encode(), WHERE, ",", False, 1) is None
    _same("é,1\n2,3\n".encode(), ",", skip=1, fast=False)  # UTF-8 text column


def test_more_slow_fields_than_kept_aside_go_to_the_reference(monkeypatch):
    data = ("\n".join(["0.12345678901234567,1"] * 40) + "\n").encode()
    _same(data)
    monkeypatch.setattr(tables, "SLOW_FIELDS", 8)
    assert _parse_fast(data, WHERE, ",", False, 0) is None
    _same(data, fast=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"1,2,3\n4,5,6\n7,8\n", "line 3: 2 fields, expected 3 (truncated?)"),
        (b"1,2,3\n4,5,6,7\n8,9,1\n", "line 2: 4 fields, expected 3"),
        (b"1,2\n3,oops\n", "line 2: a field that is not a number"),
        (b"1,2\n3,\n", "line 2: a field that is not a number"),
        (b"1;2;3\n4;5;6\n", "no ',' separator: wrong separator?"),
        (b"\n \n", "has no rows"),
        (b"1,2\n3,4 5\n", "line 2:"),
    ],
)
def test_bad_files_give_the_reference_message(text, message):
    with pytest.raises(DataError, match=re.escape(message)) as fast:
        parse_table(text, WHERE, ",", False)
    with pytest.raises(DataError) as reference:
        parse_table_reference(text, WHERE, ",", False)
    assert str(fast.value) == str(reference.value)


def test_the_kernel_stops_on_a_ragged_row_and_when_out_is_full():
    buf = np.frombuffer(b"1,2\n3,4\n5,6\n", np.uint8)
    slow = np.empty((4, 3), np.int64)
    status, rows, _ = parse_rows(buf, 0, ord(","), 0, 2, np.empty((3, 2)), slow)
    assert (status, rows) == (OK, 3)
    status, rows, _ = parse_rows(buf, 0, ord(","), 0, 2, np.empty((2, 2)), slow)
    assert status != OK and rows == 2
    status, rows, _ = parse_rows(buf, 0, ord(","), 0, 3, np.empty((3, 3)), slow)
    assert status != OK and rows == 0


@pytest.mark.parametrize("corpus", ["daic_woz", "edaic"])
def test_every_twin_file_is_read_by_the_kernel_as_by_the_reference(corpus):
    session = plan_sessions(InterviewTwinSpec(corpus=corpus, preset="tiny"))[0]
    rng = np.random.default_rng(0)
    files = (daic_files(session, rng, None, True) if corpus == "daic_woz"
             else edaic_files(session, rng))  # fmt: skip
    read = 0
    for name, data in files.items():
        if "transcript" in name.lower():
            continue
        header = not name.endswith(("COVAREP.csv", "FORMANT.csv", "densenet201.csv"))
        skip = 1 if name.endswith(("egemaps.csv", "mfcc.csv", "densenet201.csv")) else 0
        _same(data, None, header, skip)
        read += 1
    assert read == (6 if corpus == "daic_woz" else 4)
