"""Printing and writing the benchmarks' tables: each is ``(title, header, rows)`` of
strings, shown as rich tables on the console and as Markdown in reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

TableRows = tuple[str, Sequence[str], Sequence[Sequence[str]]]


def print_tables(console: Console, tables: Iterable[TableRows], left: Sequence[str] = ()) -> None:
    """Each table on ``console``; the columns named in ``left`` are left-aligned, the
    others right-aligned."""
    for title, header, rows in tables:
        table = Table(title=title)
        for column in header:
            table.add_column(column, justify="left" if column in left else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def markdown_tables(tables: Iterable[TableRows]) -> list[str]:
    """The lines of each table in Markdown, under its bold title."""
    lines = []
    for title, header, rows in tables:
        lines += [f"**{title}**", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    return lines
