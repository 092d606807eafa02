"""Atomic file writes: a result file is either complete or absent, never half-written.

Each write goes to a temporary file in the target's folder, which is flushed and
fsynced, then renamed over the target (an atomic operation on POSIX file
systems); the folder is fsynced after the rename, so that after a crash or a
power loss the target holds either its old content or the whole new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np


def write_atomic(path: str | Path, write: Callable[[IO], None], mode: str = "wb") -> None:
    """Call ``write(handle)`` on a temporary file, fsync it, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the system lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # some network and FUSE file systems refuse it; the rename is done
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text), mode="w")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda handle: handle.write(data))


def save_array_atomic(path: str | Path, array: np.ndarray) -> None:
    write_atomic(path, lambda handle: np.save(handle, array, allow_pickle=False))
