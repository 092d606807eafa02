"""Compile the numba kernels ahead of their first use, the kernel groups in parallel.

numba compiles a kernel in the process that first calls it, on one thread, and
caches the machine code on disk beside its source, so every later process
loads it at once. On a fresh clone the first call of a training step therefore
waits for every kernel in turn (about 90 s on 2 cores, most of it the scan's
backward). :func:`precompile` compiles the groups of :data:`GROUPS` in
worker processes, one per core, with the argument types the models pass, so
the wait is about that of the longest group alone; groups already in the
cache (:func:`dynmultidep.ops.kernel_cache.is_current`) are skipped.
The test suite runs it first (``tests/conftest.py``); from a shell::

    python -m dynmultidep.ops.precompile            # the groups not yet cached
    python -m dynmultidep.ops.precompile --force    # all of them again

Each group calls the project's own wrappers on tiny tensors, so a change to
the arguments they pass changes what is compiled here too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import torch

from dynmultidep.ops.kernel_cache import forget, is_current

BATCH, STEPS, CHANNELS, STATES = 2, 5, 8, 4


def _scan_forward() -> None:
    from dynmultidep.ops.scan.fused import fused_scan

    u = torch.zeros(BATCH, STEPS, CHANNELS)
    B = torch.zeros(BATCH, STEPS, STATES)
    with torch.no_grad():
        fused_scan(u, u, -torch.ones(CHANNELS, STATES), B, B, torch.ones(CHANNELS), u,
                   torch.zeros(CHANNELS), True, channels_last=True)  # fmt: skip


def _scan_backward() -> None:
    """The backward kernel alone: :class:`FusedScan`'s backward on the tensors its
    forward would save (zeros), so this group need not compile the forward."""
    from dynmultidep.ops.scan.cpu_kernel import job_lanes
    from dynmultidep.ops.scan.fused import CHUNK, FusedScan

    u = torch.zeros(BATCH, STEPS, CHANNELS)
    B = torch.zeros(BATCH, STEPS, STATES)
    chunk_states = torch.zeros(BATCH, -(-STEPS // CHUNK), STATES, CHANNELS)
    lengths = torch.full((BATCH,), STEPS, dtype=torch.int64)
    vector = torch.zeros(CHANNELS)
    saved = (u, u, torch.zeros(STATES, CHANNELS), B, B, vector, u, vector, chunk_states, lengths)
    ctx = SimpleNamespace(
        saved_tensors=saved,
        flags=(True, True, True, True),
        order=(True, False),
        lanes=job_lanes(BATCH, CHANNELS, 1),
        needs_input_grad=(True,) * 12,
    )
    FusedScan.backward(ctx, u, None)


def _causal_conv() -> None:
    """Forward and backward, on a contiguous input and on the strided channels-last
    view the Mamba block passes (numba compiles each memory layout apart)."""
    from dynmultidep.ops.causal_conv import causal_conv1d

    weight = torch.zeros(CHANNELS, 4, requires_grad=True)
    bias = torch.zeros(CHANNELS, requires_grad=True)
    xz = torch.zeros(BATCH, STEPS, 2 * CHANNELS, requires_grad=True)
    for x in (xz[..., :CHANNELS], torch.zeros(BATCH, STEPS, CHANNELS, requires_grad=True)):
        causal_conv1d(x, weight, bias, silu=True, backend="fused").sum().backward()


def _dropout() -> None:
    from dynmultidep.ops.dropout import hashed_dropout

    for dtype in (torch.float32, torch.bfloat16):
        x = torch.zeros(BATCH, STEPS, CHANNELS, dtype=dtype, requires_grad=True)
        hashed_dropout(x, 0.5, keys=(1, 2)).sum().backward()


def _attention() -> None:
    from dynmultidep.ops.attention import fused_banded_attention

    for dtype in (torch.float32, torch.bfloat16):
        x = torch.zeros(BATCH, STEPS, 3 * CHANNELS, dtype=dtype, requires_grad=True)
        lengths = torch.tensor([STEPS, 2])
        fused_banded_attention(x, lengths, 2, 2, dropout=0.5, keys=(1, 2)).sum().backward()


@dataclass(frozen=True)
class Group:
    """A set of kernels compiled together: ``run`` calls them; ``kernels`` names
    their cached dispatchers (``module:function``); ``seconds`` is a rough first
    compilation on 2 cores, used to share the groups out among the workers."""

    run: Callable[[], None]
    kernels: tuple[str, ...]
    seconds: float


_SSM = "dynmultidep.ops.scan"
GROUPS: dict[str, Group] = {
    "scan_backward": Group(_scan_backward, (f"{_SSM}.backward_kernel:scan_backward",
                                            f"{_SSM}.backward_kernel:_backward_job"), 50),
    "scan_forward": Group(_scan_forward, (f"{_SSM}.forward_kernel:scan_forward",
                                          f"{_SSM}.forward_kernel:_forward_job"), 30),
    "causal_conv": Group(_causal_conv, tuple(f"dynmultidep.ops.conv_kernel:{name}" for name in
                         ("conv_forward", "conv_backward_pre", "conv_backward_input")), 8),
    "dropout": Group(_dropout, tuple(f"dynmultidep.ops.dropout_kernel:{name}" for name in
                     ("masked_scale", "masked_scale_bf16")), 2),
    "attention": Group(_attention, tuple(f"dynmultidep.ops.attention_kernel:{name}" for name in
                       ("banded_forward", "_forward_job", "banded_backward", "_backward_job")), 15),
}  # fmt: skip


def stale(groups: list[str] | None = None) -> list[str]:
    """The ``groups`` (default all) with a kernel that would compile on its next
    call, or would load code compiled before its helpers last changed."""
    names = list(GROUPS) if groups is None else groups
    return [name for name in names if not all(map(is_current, GROUPS[name].kernels))]


def _share_out(names: list[str], workers: int) -> list[list[str]]:
    """The groups in at most ``workers`` lists of near-equal expected seconds,
    longest first onto the least loaded list."""
    lists: list[list[str]] = [[] for _ in range(min(workers, len(names)))]
    loads = [0.0] * len(lists)
    for name in sorted(names, key=lambda n: -GROUPS[n].seconds):
        i = loads.index(min(loads))
        lists[i].append(name)
        loads[i] += GROUPS[name].seconds
    return lists


def precompile(
    groups: list[str] | None = None, jobs: int | None = None, force: bool = False
) -> dict[str, float]:
    """Compile the stale ``groups`` (default all of :data:`GROUPS`; with ``force``
    every one) in at most ``jobs`` (default the number of cores) subprocesses
    at once; returns each compiled group's seconds (empty when all were cached).
    Raises ValueError for an unknown group, RuntimeError naming the group and its
    error when one fails to compile."""
    names = list(GROUPS) if groups is None else list(groups)
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown kernel groups {unknown}; known: {list(GROUPS)}")
    names = names if force else stale(names)
    for name in names:
        for kernel in GROUPS[name].kernels:
            forget(kernel)
    workers = []
    for share in _share_out(names, max(1, jobs or os.cpu_count() or 1)):
        command = [sys.executable, "-m", "dynmultidep.ops.precompile"]
        command += [arg for name in share for arg in ("--group", name)]
        errors = tempfile.TemporaryFile()  # a file, not a pipe, so a long log cannot block
        workers.append((subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors), errors))
    seconds: dict[str, float] = {}
    failure = None
    for process, errors in workers:
        out, _ = process.communicate()
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
        errors.close()
        if process.returncode != 0 and failure is None:
            failure = lines[-1] if lines else f"exit status {process.returncode}"
        elif process.returncode == 0:
            seconds.update(json.loads(out))
    if failure is not None:
        raise RuntimeError(f"compiling the kernels failed: {failure}")
    return seconds


def _run(names: list[str]) -> dict[str, float]:
    seconds = {}
    for name in names:
        start = time.perf_counter()
        try:
            GROUPS[name].run()
        except Exception as error:
            raise RuntimeError(f"kernel group {name!r}: {type(error).__name__}: {error}") from error
        seconds[name] = round(time.perf_counter() - start, 2)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", action="append", choices=list(GROUPS),
                        help="compile this group in this process (repeatable)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=None, help="parallel processes (cores)")
    parser.add_argument("--force", action="store_true", help="compile cached groups too")
    args = parser.parse_args(argv)
    try:
        if args.group:  # a worker: its groups' seconds as JSON on stdout
            print(json.dumps(_run(args.group)))
            return 0
        seconds = precompile(jobs=args.jobs, force=args.force)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    done = ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items())
    print(f"compiled: {done}" if seconds else "all kernels are cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
