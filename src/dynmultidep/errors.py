"""Error types of the project.

Every problem with input files is a :class:`DataError` whose one-line message
starts with the offending file, so a user can find and fix it without a traceback.
"""

from __future__ import annotations

from pathlib import Path


def describe_error(err: BaseException) -> str:
    """``"Type: first line of its message"``: another library's error, on one line."""
    text = (str(err).splitlines() or [""])[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class DynMultiDepError(Exception):
    """Base class of the errors this project raises on purpose."""


class MissingExtraError(DynMultiDepError, ImportError):
    """An optional extra's package is not installed."""


class FileError(DynMultiDepError, ValueError):
    """An input file is missing, malformed or inconsistent.

    ``str(err)`` is ``"<path>: <problem>"`` on a single line.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")


class DataError(FileError):
    """A corpus file is missing, malformed or inconsistent."""


class CheckpointError(FileError):
    """A checkpoint is missing, unreadable, or not one this project wrote."""
