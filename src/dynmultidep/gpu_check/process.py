"""The context of one check, and its commands: streamed as they print, bounded in time.

Every line a command prints goes to the console (indented under its step) and to the
check's log file; a command past its time limit is interrupted with its whole process
group (SIGINT, so that pytest still writes its JUnit report), killed 10 s later if it
has not ended, and reported as timed out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from dynmultidep.gpu_check.plan import CheckPlan

GRACE_S = 10.0  # between the interrupt and the kill of a command past its time


@dataclass
class Context:
    """Where a check runs and writes, and how much time it has left.

    Attributes:
        plan: the sizes (:mod:`.plan`).
        repo: the repository root (commands run there).
        out: the report folder (``report.json``, ``report.md``, ``check.log``, ...).
        work: scratch space (the corpus, the training runs, the built packages).
        python: the interpreter that runs the project.
        bundle: what ``prepare.sh`` made (``sdists/`` of the optional packages).
        deadline: ``time.monotonic()`` at which the budget ends.
        log: the open log file.
        env: extra environment for every command (``PYTHONPATH`` of built packages).
    """

    plan: CheckPlan
    repo: Path
    out: Path
    work: Path
    python: str
    bundle: Path
    deadline: float
    log: TextIO
    env: dict[str, str] = field(default_factory=dict)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()


@dataclass
class Completed:
    """A finished (or killed) command: its exit status, output lines and wall time."""

    returncode: int | None  # None: killed at its time limit
    lines: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, count: int = 15) -> list[str]:
        return self.lines[-count:]


def _stream(pipe, ctx: Context, lines: list[str]) -> None:
    for raw in pipe:
        line = raw.rstrip("\n")
        lines.append(line)
        ctx.say(f"    | {line}")


def _stop(process: subprocess.Popen) -> None:
    """Interrupt the command's process group (pytest then still writes its reports),
    kill it after :data:`GRACE_S`."""
    for sig, wait in ((signal.SIGINT, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # ended on its own meanwhile
            pass
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(
    ctx: Context, args: list[str], timeout: float, env: dict[str, str] | None = None
) -> Completed:
    """Run ``args`` in the repository, streaming its output; kill it after ``timeout`` s."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **ctx.env, **(env or {})}
    ctx.say(f"  $ {' '.join(args)}")
    start = time.perf_counter()
    lines: list[str] = []
    process = subprocess.Popen(
        args, cwd=ctx.repo, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", start_new_session=True,
    )  # fmt: skip
    reader = threading.Thread(target=_stream, args=(process.stdout, ctx, lines), daemon=True)
    reader.start()
    try:
        returncode: int | None = process.wait(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        _stop(process)
        returncode = None
        ctx.say(f"  ! killed after {timeout:.0f} s")
    reader.join(timeout=10)
    return Completed(returncode, lines, time.perf_counter() - start)
