"""Finding the sessions of a release and reading their files, zipped or not.

A session comes as released, ``{id}_P.zip`` (DAIC-WOZ: its members at the zip's root)
or ``{id}_P.tar.gz`` (E-DAIC: a ``{id}_P/`` folder inside, features under
``features/``), or as the folder ``{id}_P/`` such an archive unpacks to. A session's
file is found by its name alone (``300_COVAREP.csv``), wherever it lies inside.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.errors import DataError

_SESSION = re.compile(r"^(\d+)_P(\.zip|\.tar\.gz|\.tgz)?$")


@dataclass(frozen=True)
class Session:
    """One session of a release: its id and where its files are."""

    id: str
    source: Path  # the archive or the folder

    def where(self, name: str) -> Path:
        """How an error names the session's file ``name``: the file, or ``archive/name``."""
        return self.source / name

    def read(self, wanted: Iterable[str]) -> dict[str, bytes]:
        """``{name: bytes}`` of the files named in ``wanted`` (file names such as
        ``300_CLNF_AUs.txt``) that the session has, in one pass over an archive."""
        wanted = set(wanted)
        try:
            if self.source.is_dir():
                return {p.name: p.read_bytes() for p in self.source.rglob("*")
                        if p.name in wanted and p.is_file()}  # fmt: skip
            if self.source.name.endswith(".zip"):
                with zipfile.ZipFile(self.source) as archive:
                    return {Path(m).name: archive.read(m) for m in archive.namelist()
                            if Path(m).name in wanted}  # fmt: skip
            found = {}
            with tarfile.open(self.source) as archive:  # a .tar.gz is read in one stream
                for member in archive:
                    name = Path(member.name).name
                    if member.isfile() and name in wanted:
                        found[name] = archive.extractfile(member).read()
            return found
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
            raise DataError(self.source, f"not a readable session archive ({err})") from None


def find_sessions(root: Path) -> dict[str, Session]:
    """``{id: session}`` of the release at ``root``: its ``{id}_P`` archives and folders,
    at the root or one folder down. An id found both zipped and unpacked is read from
    its folder."""
    if not root.is_dir():
        raise DataError(root, "release folder not found")
    sessions: dict[str, Session] = {}
    for path in sorted([*root.iterdir(), *root.glob("*/*")]):
        match = _SESSION.match(path.name)
        if match is None or not (path.is_dir() or match.group(2)):
            continue
        found = sessions.get(match.group(1))
        if found is None or (path.is_dir() and not found.source.is_dir()):
            sessions[match.group(1)] = Session(match.group(1), path)
    return sessions


def sessions_at(path: Path) -> dict[str, Session]:
    """``{id: session}`` at ``path``: the one session it is (``{id}_P.zip``, ``.tar.gz`` or
    the ``{id}_P/`` folder), or those of the release or folder it is (:func:`find_sessions`)."""
    match = _SESSION.match(path.name)
    if match is not None and (path.is_dir() or (match.group(2) and path.is_file())):
        return {match.group(1): Session(match.group(1), path)}
    if not path.exists():
        raise DataError(path, "not found")
    if not path.is_dir():
        raise DataError(path, "neither a session ({id}_P.zip, .tar.gz or folder) nor a folder")
    return find_sessions(path)
