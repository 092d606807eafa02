#!/usr/bin/env python
"""Benchmarks a reader can rerun: ``make bench`` (``--quick`` for a subset).

Sections implemented so far:

* ``scan``: the selective scan, default path (fused CPU kernels) against the
  sequential reference, forward and forward+backward, fp32, batch 8,
  d_inner 1024, in mamba_ssm's layout ``(batch, d_inner, L)`` and in the
  channels-last layout ``(batch, L, d_inner)`` the Mamba blocks use. Every
  ratio is measured in the same process, interleaved, as a ratio of medians
  (machines here are noisy; absolute times are context).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

from dynmultidep.models.ssm import selective_scan, selective_scan_channels_last


def scan_inputs(batch, channels, length, n_state, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = {
        "u": torch.randn(batch, channels, length, generator=g),
        "delta": torch.randn(batch, channels, length, generator=g),
        "A": -torch.rand(channels, n_state, generator=g) * 4 - 0.1,
        "B": torch.randn(batch, n_state, length, generator=g),
        "C": torch.randn(batch, n_state, length, generator=g),
        "D": torch.randn(channels, generator=g),
        "z": torch.randn(batch, channels, length, generator=g),
        "delta_bias": torch.randn(channels, generator=g),
    }
    return {k: v.requires_grad_() for k, v in inputs.items()}


def channels_last(inputs):
    """The same inputs, laid out ``(batch, L, channels)``."""
    moved = {k: v.detach().transpose(1, 2).contiguous() if v.dim() == 3 else v.detach()
             for k, v in inputs.items()}  # fmt: skip
    return {k: v.requires_grad_() for k, v in moved.items()}


def run_scan(inputs, backend, backward, upstream, layout="mamba"):
    scan = selective_scan if layout == "mamba" else selective_scan_channels_last
    with torch.set_grad_enabled(backward):
        y = scan(**inputs, delta_softplus=True, backend=backend)
        if backward:
            y.backward(upstream)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_scan(lengths, states, reference_repeats, fused_repeats):
    rows = []
    for n_state in states:
        for length in lengths:
            inputs = scan_inputs(8, 1024, length, n_state)
            inputs_cl = channels_last(inputs)
            upstream = torch.randn(8, 1024, length)
            upstream_cl = upstream.transpose(1, 2).contiguous()
            for backward in (False, True):
                passes = {
                    "fused": functools.partial(run_scan, inputs, "fused", backward, upstream),
                    "fused_cl": functools.partial(
                        run_scan, inputs_cl, "fused", backward, upstream_cl, "channels_last"
                    ),
                    "reference": functools.partial(
                        run_scan, inputs, "reference", backward, upstream
                    ),
                }
                passes["fused"]()  # compile and warm up
                passes["fused_cl"]()
                times = {name: [] for name in passes}
                for _ in range(reference_repeats):  # interleaved: all see the same machine
                    for name, run in passes.items():
                        times[name].append(timed(run, 1 if name == "reference" else fused_repeats))
                med = {name: statistics.median(t) for name, t in times.items()}
                rows.append(
                    {
                        "N": n_state,
                        "L": length,
                        "pass": "fwd+bwd" if backward else "fwd",
                        "reference_s": med["reference"],
                        "fused_s": med["fused"],
                        "speedup": med["reference"] / med["fused"],
                        "fused_channels_last_s": med["fused_cl"],
                        "speedup_channels_last": med["reference"] / med["fused_cl"],
                    }
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a subset that runs in about 2 minutes"
    )
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        rows = bench_scan([600, 2048], [16], reference_repeats=1, fused_repeats=3)
    else:
        rows = bench_scan([256, 600, 2048, 4096], [12, 16], reference_repeats=3, fused_repeats=5)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    table = Table(title=f"selective scan, batch 8, d_inner 1024, fp32 ({machine})")
    columns = ("N", "L", "pass", "reference (s)", "fused (s)", "speed-up",
               "fused, channels-last (s)", "speed-up")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["N"]),
            str(row["L"]),
            row["pass"],
            f"{row['reference_s']:.2f}",
            f"{row['fused_s']:.3f}",
            f"{row['speedup']:.1f}x",
            f"{row['fused_channels_last_s']:.3f}",
            f"{row['speedup_channels_last']:.1f}x",
        )
    Console(width=140).print(table)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "scan": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
