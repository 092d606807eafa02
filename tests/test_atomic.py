"""Atomic writes: complete or absent, and durable (fsynced) before the rename."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dynmultidep import atomic
from dynmultidep.atomic import save_array_atomic, write_atomic, write_text_atomic


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="names fds through /proc")
def test_the_file_is_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).name))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    target = tmp_path / "out" / "metrics.json"
    write_text_atomic(target, '{"acc": 1}')
    assert target.read_text() == '{"acc": 1}'
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(".metrics.json.")  # the temporary file, before the rename
    assert events[2][1] == "out"  # the folder, after it


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.npy"
    save_array_atomic(target, np.arange(3))

    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, fail)
    assert np.load(target).tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
