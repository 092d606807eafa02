"""The recipe model at two commits of this repository: inference or a training step,
timed in alternating processes.

Two commits' code cannot be imported in one process, so each timing runs in a
child process (:mod:`dynmultidep.bench.revision_worker`) that puts one tree's
``src`` first on ``sys.path``: the working tree, or a temporary detached ``git
worktree`` of a commit. The children alternate, tree after tree, ``rounds``
times, so both see the same drift of the machine, and the result is the ratio
of the medians of all their timed calls. An older commit's numba kernels
compile in its worktree during the child's untimed warm-up.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dynmultidep.bench import revision_worker
from dynmultidep.errors import DynMultiDepError

WORKER = Path(revision_worker.__file__).resolve()


class RevisionError(DynMultiDepError):
    """A commit that does not resolve, or a child that failed; the message is one line."""


def resolve(repo: Path, rev: str) -> str:
    """The full hash of ``rev`` in ``repo``."""
    done = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet",
                           f"{rev}^{{commit}}"], capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RevisionError(f"{repo}: {rev!r} is not a commit of this repository")
    return done.stdout.strip()


@contextmanager
def worktree(repo: Path, commit: str) -> Iterator[Path]:
    """A detached checkout of ``commit`` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="dynmultidep-rev-") as parent:
        path = Path(parent) / commit[:12]
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet",
                        str(path), commit], check=True, capture_output=True)  # fmt: skip
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(path)],
                           capture_output=True)  # fmt: skip


def time_tree(tree: Path, mode: str, batch: int, length: int, repeats: int) -> list[float]:
    """``repeats`` timed calls in one child process on ``tree``, in seconds."""
    command = [sys.executable, str(WORKER), str(tree), mode, str(batch), str(length),
               str(repeats)]  # fmt: skip
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise RevisionError(f"{tree}: the timing process failed: {lines[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["times_s"]


def compare_trees(
    trees: dict[str, Path], mode: str, batch: int, length: int, rounds: int, repeats: int
) -> dict:
    """Every tree ``rounds`` times, alternating; medians and fastest calls, and each
    one's speed-up over the first tree (its median over theirs, and its fastest call
    over theirs: on a host that runs at half speed for seconds at a time the fastest
    calls compare the code, where the medians depend on how many calls a slow spell
    caught)."""
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            times[name] += time_tree(tree, mode, batch, length, repeats)
    first = times[next(iter(times))]
    rows = [{"tree": name, "median_s": statistics.median(t),
             "speedup": statistics.median(first) / statistics.median(t), "fastest_s": min(t),
             "speedup_fastest": min(first) / min(t), "times_s": t}
            for name, t in times.items()]  # fmt: skip
    return {"mode": mode, "batch": batch, "length": length, "rounds": rounds, "rows": rows}


def compare_revisions(
    repo: Path, rev: str, mode: str = "inference", batch: int = 32, length: int = 1000,
    rounds: int = 3, repeats: int = 3,
) -> dict:  # fmt: skip
    """Commit ``rev`` against the working tree of ``repo``."""
    if mode not in revision_worker.MODES:
        raise RevisionError(f"unknown mode {mode!r}; use {' or '.join(revision_worker.MODES)}")
    commit = resolve(repo, rev)
    with worktree(repo, commit) as old:
        name = rev if commit.startswith(rev) else f"{rev} ({commit[:7]})"
        trees = {name: old, "working tree": repo}
        return compare_trees(trees, mode, batch, length, rounds, repeats)
