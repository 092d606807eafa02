"""One training step of the D-Vlog recipe model, profiled by op group.

A forward + backward + Adam step at ``batch x length`` (random features, every
vlog full length), profiled with ``torch.profiler``; each op's *self* time is
put in one group (matrix products, the fused scan and convolution kernels,
which run under named ``record_function`` ranges, layout and dtype copies,
the reversal within lengths, dropout masks, everything else). The profiled
step's total is set against the time of its matrix products plus its scan, the
work that defines it (their self times in the same step, so the profiler's
overhead is on both sides); the unprofiled step's wall time (the median of
:data:`STEP_REPEATS` steps) is reported beside it. Inference is the same forward
under ``torch.inference_mode`` in eval mode. ``make bench`` runs it on the fused
paths and again on PyTorch's (convolution, reversal, dropout, attention), the
same-process comparison of those kernels, and
on the paper recipe (``experiment=dvlog_dynmultidep_paper``) with and without MTEM.
Each result also counts the step's FLOPs (``torch.utils.flop_counter``: matrix
products and convolutions; the scan and banded-attention kernels are not ATen
operations and are not counted: PyTorch's paths count the attention's products).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from dynmultidep.bench.revision_worker import recipe_inputs, train_step
from dynmultidep.bench.throughput import recipe_config

GROUPS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "selective scan (fused)": ("selective_scan_forward", "selective_scan_backward"),
    "causal conv (fused)": ("causal_conv_forward", "causal_conv_backward"),
    "mkldnn convolution": ("aten::mkldnn_convolution", "aten::convolution_backward"),
    "copies (layout, dtype)": ("aten::copy_", "aten::clone", "aten::contiguous"),
    "reversal within lengths": ("aten::gather", "aten::scatter_add_", "aten::scatter_add"),
    "dropout (hashed, fused)": ("hashed_dropout",),
    "banded attention (fused)": ("banded_attention_forward", "banded_attention_backward"),
    "dropout masks (PyTorch)": ("aten::bernoulli_",),
}
OTHER = "other (elementwise, reductions, optimiser)"


def group_of(name: str) -> str:
    for group, names in GROUPS.items():
        if name in names:
            return group
    return OTHER


PATHS = ("fused", "pytorch")


def recipe_model(
    conf_dir: Path, paths: str = "fused", experiment: str = "dvlog_dynmultidep",
    overrides: tuple[str, ...] = (),
):  # fmt: skip
    """The model of recipe ``experiment`` (with ``overrides``). ``paths``: ``fused`` (the
    defaults: numba causal convolution, hashed dropout, banded attention) or ``pytorch``
    (PyTorch's convolution, with the backward direction reversed by gathered copies,
    PyTorch's dropout and its attention on blocks); the scan is the fused one in both."""
    from dynmultidep.models.attention import LocalAttention, LocalCrossAttention
    from dynmultidep.models.mamba import Mamba
    from dynmultidep.ops.dropout import Dropout

    if paths not in PATHS:
        raise ValueError(f"unknown paths {paths!r}; use fused or pytorch")
    net = instantiate(recipe_config(conf_dir, "tiny", overrides, experiment).model)
    for module in net.modules():
        if isinstance(module, Mamba):
            module.conv_backend = "auto" if paths == "fused" else "reference"
        elif isinstance(module, Dropout | LocalAttention | LocalCrossAttention):
            module.kernel = paths == "fused"
    return net


PRECISIONS = ("32", "bf16")
STEP_REPEATS = 3  # timed steps after the warm-up; the step's time is their median


def bench_step(
    conf_dir: Path, batch: int = 32, length: int = 1000, paths: str = "fused",
    precision: str = "32", experiment: str = "dvlog_dynmultidep", overrides: tuple[str, ...] = (),
) -> dict:  # fmt: skip
    """The step, its profile, FLOPs and inference; ``precision``: ``32`` (fp32) or ``bf16``
    (bf16 autocast, as ``trainer=bf16`` trains: fp32 weights, bf16 products);
    ``experiment`` and ``overrides``: the recipe and its changes."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use 32 or bf16")
    net = recipe_model(conf_dir, paths, experiment, overrides)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    inputs = recipe_inputs(batch, length)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> None:
        train_step(net, optimizer, inputs, autocast)

    def infer() -> None:
        net.eval()
        with torch.inference_mode(), autocast():
            net(*inputs)
        net.train()

    step()  # warm-up: kernels compiled, buffers allocated
    times = []
    for _ in range(STEP_REPEATS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    step_s = sorted(times)[len(times) // 2]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        step()
    seconds: dict[str, float] = defaultdict(float)
    for event in profile.key_averages():
        seconds[group_of(event.key)] += event.self_cpu_time_total / 1e6
    profiled = sum(seconds.values())
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    infer()
    start = time.perf_counter()
    infer()
    inference_s = time.perf_counter() - start
    groups = [
        {"group": g, "seconds": seconds.get(g, 0.0), "share": seconds.get(g, 0.0) / profiled}
        for g in (*GROUPS, OTHER)
    ]
    defining = seconds.get("matrix products", 0.0) + seconds.get("selective scan (fused)", 0.0)
    return {
        "model": " ".join([experiment.removeprefix("dvlog_"), *overrides]),
        "paths": paths,
        "precision": precision,
        "batch": batch,
        "length": length,
        "step_s": step_s,
        "profiled_s": profiled,
        "groups": groups,
        "matmul_plus_scan_s": defining,
        "step_over_matmul_plus_scan": profiled / defining if defining else None,
        "inference_s": inference_s,
        "step_gflops": counter.get_total_flops() / 1e9,
    }
