"""The selective scan: the default path (fused CPU kernels) against the sequential
reference, ``mambapy``'s parallel scan when installed, and the machine's arithmetic bound.

Shapes: fp32, batch 8, d_inner 1024, in mamba_ssm's layout ``(batch, d_inner, L)``
and in the channels-last layout ``(batch, L, d_inner)`` the Mamba blocks use. Every
ratio is a ratio of medians measured in the same process, interleaved, so that all
paths see the same (noisy) machine.

The bound: the fused kernels do, per state element and step, ``EXP`` exponentials and
``MULADD`` multiplies/multiply-adds (counted from the kernels of
``dynmultidep.ops.scan``: ``forward_kernel``, ``backward_kernel``);
:mod:`dynmultidep.bench.bound` measures the machine's throughput for both, and the
bound is the time those operations alone would take. The roofline is stricter:
the same count, each exponential as ``EXP_LANE_OPS`` lane-operations, at the
register-only multiply-add rate (:func:`dynmultidep.bench.bound.fma_rate`),
measured in the same run.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F

from dynmultidep.bench.bound import EXP_LANE_OPS, arithmetic_rates, fma_rate
from dynmultidep.bench.timing import median_time
from dynmultidep.ops.scan import selective_scan, selective_scan_channels_last

BATCH, CHANNELS = 8, 1024
MAMBAPY_MAX_L = 600
# Per state element and step, forward and forward+backward (the backward pass redoes the
# forward within each chunk, then walks back: 9 more multiply-adds).
EXP = {"fwd": 1, "fwd+bwd": 2}
MULADD = {"fwd": 4, "fwd+bwd": 17}


def scan_inputs(length: int, n_state: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    inputs = {
        "u": torch.randn(BATCH, CHANNELS, length, generator=g),
        "delta": torch.randn(BATCH, CHANNELS, length, generator=g),
        "A": -torch.rand(CHANNELS, n_state, generator=g) * 4 - 0.1,
        "B": torch.randn(BATCH, n_state, length, generator=g),
        "C": torch.randn(BATCH, n_state, length, generator=g),
        "D": torch.randn(CHANNELS, generator=g),
        "z": torch.randn(BATCH, CHANNELS, length, generator=g),
        "delta_bias": torch.randn(CHANNELS, generator=g),
    }
    return {k: v.requires_grad_() for k, v in inputs.items()}


def channels_last(inputs: dict) -> dict:
    """The same inputs, laid out ``(batch, L, channels)``."""
    moved = {k: v.detach().transpose(1, 2).contiguous() if v.dim() == 3 else v.detach()
             for k, v in inputs.items()}  # fmt: skip
    return {k: v.requires_grad_() for k, v in moved.items()}


def mambapy_scan(u, delta, A, B, C, D, z, delta_bias):
    """The selective scan through ``mambapy``'s parallel (Blelloch) scan, which holds
    ``(batch, L, d_inner, N)`` tensors; mamba_ssm's layout in and out."""
    from mambapy.pscan import pscan

    dt = F.softplus(delta + delta_bias[:, None]).transpose(1, 2)  # (B, L, D)
    x = u.transpose(1, 2)
    decay = torch.exp(dt.unsqueeze(-1) * A)  # (B, L, D, N)
    drive = (dt * x).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2)
    states = pscan(decay, drive)
    y = (states @ C.transpose(1, 2).unsqueeze(-1)).squeeze(-1) + D * x
    return (y * F.silu(z.transpose(1, 2))).transpose(1, 2)


def mambapy_available() -> bool:
    try:
        import mambapy.pscan  # noqa: F401
    except ImportError:
        return False
    return True


def clear_gradients(inputs: dict) -> None:
    """Drop the ``.grad`` of every input. A timed backward pass then hands its
    gradients to the inputs instead of adding them to the last pass's: in a model
    the scan's inputs are activations, which keep no gradient, and adding into the
    leaves (at N 16, L 2048 three 64 MiB tensors read twice and written once) is
    no part of the scan's cost."""
    for value in inputs.values():
        value.grad = None


def scan_pass(path: str, inputs: dict, backward: bool, upstream: torch.Tensor,
              **options) -> None:  # fmt: skip
    """One forward (and backward) of ``path``: fused, fused_cl, reference, chunked, cuda
    (mamba_ssm's kernels) or mambapy; ``options`` replace arguments of the scan (e.g.
    ``delta_softplus=False, z=None``). The inputs' gradients from the last pass are
    dropped first (:func:`clear_gradients`)."""
    if backward:
        clear_gradients(inputs)
    with torch.set_grad_enabled(backward):
        if path == "mambapy":
            y = mambapy_scan(**inputs)
        else:
            scan = selective_scan_channels_last if path == "fused_cl" else selective_scan
            backend = path if path in ("reference", "chunked", "cuda") else "fused"
            y = scan(**{**inputs, "delta_softplus": True, **options}, backend=backend)
        if backward:
            y.backward(upstream)


def small_scan_inputs(length: int, n_state: int, batch: int = 2, channels: int = 64) -> dict:
    """The first ``batch`` samples and ``channels`` channels of :func:`scan_inputs`, detached."""
    inputs = {k: v.detach() for k, v in scan_inputs(length, n_state).items()}
    return {
        k: v[:batch, :channels] if k in ("u", "delta", "z") else v[:batch] if k in ("B", "C")
        else v[:channels]
        for k, v in inputs.items()
    }  # fmt: skip


def mambapy_difference(n_state: int) -> float:
    """Largest difference between mambapy's scan and the reference on a small case,
    relative to the largest output (checked before timing it)."""
    small = small_scan_inputs(256, n_state)
    ref = selective_scan(**small, delta_softplus=True, backend="reference")
    return float((ref - mambapy_scan(**small)).abs().max() / ref.abs().max())


def bound_seconds(length: int, n_state: int, pass_name: str, rates: dict) -> float:
    updates = BATCH * CHANNELS * length * n_state
    return updates * (EXP[pass_name] * rates["exp"] + MULADD[pass_name] * rates["muladd"])


def lane_ops(pass_name: str) -> int:
    """Lane-operations per state element and step: 14 forward, 37 forward+backward."""
    return EXP[pass_name] * EXP_LANE_OPS + MULADD[pass_name]


def peak_rate(readings: list[float]) -> float:
    """The roofline's rate from readings of :func:`fma_rate` around a timing: the
    highest, since a reading can only be lowered (by anything else the host runs
    meanwhile), never raised; their median let one disturbed reading flatter a row
    (BENCHMARKS.md, "AVX2: AMD EPYC, Zen 3")."""
    return max(readings)


def roofline_seconds(length: int, n_state: int, pass_name: str, lanes_per_s: float) -> float:
    return BATCH * CHANNELS * length * n_state * lane_ops(pass_name) / lanes_per_s


def bench_scan(
    lengths: list[int], states: list[int], repeats: int, fused_repeats: int,
    on_row: Callable[[str], None] | None = None,
) -> dict:  # fmt: skip
    """Rows per (N, L, pass); ``repeats`` interleaved rounds (one reference call each,
    ``fused_repeats`` calls of the fast paths). ``on_row`` hears of each row as it
    starts (the run's progress)."""
    rates = arithmetic_rates()
    fma_rates = [fma_rate()]  # measured again after every shape: the host's rate drifts
    with_mambapy = mambapy_available()
    differences = {n: mambapy_difference(n) for n in states} if with_mambapy else {}
    rows = []
    for n_state in states:
        for length in lengths:
            inputs = scan_inputs(length, n_state)
            inputs_cl = channels_last(inputs)
            upstream = torch.randn(BATCH, CHANNELS, length)
            upstream_cl = upstream.transpose(1, 2).contiguous()
            for backward in (False, True):
                pass_name = "fwd+bwd" if backward else "fwd"
                if on_row is not None:
                    on_row(f"N {n_state}, L {length}, {pass_name}")
                paths = {
                    "fused": functools.partial(scan_pass, "fused", inputs, backward, upstream),
                    "fused_cl": functools.partial(
                        scan_pass, "fused_cl", inputs_cl, backward, upstream_cl
                    ),
                    "reference": functools.partial(
                        scan_pass, "reference", inputs, backward, upstream
                    ),
                }
                # mambapy holds (8, L, 1024, N) tensors and takes 12-23 s per call at
                # L=2048 here: timed up to MAMBAPY_MAX_L to keep `make bench` in budget
                if with_mambapy and length <= MAMBAPY_MAX_L:
                    paths["mambapy"] = functools.partial(
                        scan_pass, "mambapy", inputs, backward, upstream
                    )
                paths["fused"]()  # compile and warm up
                paths["fused_cl"]()
                times: dict[str, list[float]] = {name: [] for name in paths}
                for _ in range(repeats):
                    for name, run in paths.items():
                        slow = name in ("reference", "mambapy")
                        times[name].append(median_time(run, 1 if slow else fused_repeats))
                med = {name: statistics.median(t) for name, t in times.items()}
                bound = bound_seconds(length, n_state, pass_name, rates)
                fma_rates.append(fma_rate())
                lanes_per_s = peak_rate(fma_rates[-2:])  # around this shape's timings
                roofline = roofline_seconds(length, n_state, pass_name, lanes_per_s)
                rows.append({
                    "N": n_state, "L": length, "pass": pass_name, "repeats": repeats,
                    "reference_s": med["reference"], "fused_s": med["fused"],
                    "fused_channels_last_s": med["fused_cl"],
                    "mambapy_s": med.get("mambapy"),
                    "mambapy_rel_diff": differences.get(n_state),
                    "speedup": med["reference"] / med["fused"],
                    "speedup_channels_last": med["reference"] / med["fused_cl"],
                    "speedup_vs_mambapy": med["mambapy"] / med["fused_cl"]
                    if "mambapy" in med else None,
                    "bound_s": bound, "times_bound": med["fused_cl"] / bound,
                    "fma_lanes_per_s": lanes_per_s, "roofline_s": roofline,
                    "times_roofline": med["fused_cl"] / roofline,
                })  # fmt: skip
    return {"rates_s_per_element": rates, "fma_lanes_per_s": fma_rates, "mambapy": with_mambapy,
            "rows": rows}  # fmt: skip


COSTS = {  # path, options, inputs without gradients: what each configuration leaves out
    "channels-last": ("fused_cl", {}, ()),
    "mamba_ssm layout": ("fused", {}, ()),
    "channels-last, no softplus or gate": ("fused_cl", {"delta_softplus": False, "z": None}, ()),
    "channels-last, no gradients of B and C": ("fused_cl", {}, ("B", "C")),  # backward only
}


def scan_costs(length: int, n_state: int, repeats: int, fused_repeats: int) -> dict:
    """What the fused kernels spend besides the state updates, by difference of timed
    configurations in one run: the transposition of mamba_ssm's layout (that layout
    minus channels-last), the chunk prelude and gate (softplus of ``delta`` and
    ``silu(z)``: channels-last minus the same without them), in the backward the
    gradients of ``B`` and ``C`` (their per-lane partial tiles and the sums across
    lanes: channels-last minus the same with ``B`` and ``C`` given no gradients), and
    what is left without softplus and gate (the state updates, tiles and lane
    reductions), each against the roofline."""
    inputs = scan_inputs(length, n_state)
    layouts = {"fused": inputs, "fused_cl": channels_last(inputs)}
    upstream = {"fused": torch.randn(BATCH, CHANNELS, length)}
    upstream["fused_cl"] = upstream["fused"].transpose(1, 2).contiguous()
    lanes_per_s = [fma_rate()]
    rows = []
    for backward in (False, True):
        pass_name = "fwd+bwd" if backward else "fwd"
        runs = {}
        for name, (path, options, frozen) in COSTS.items():
            if frozen and not backward:
                continue  # the forward does the same work without those gradients
            options = {**options, **{k: layouts[path][k].detach() for k in frozen}}
            runs[name] = functools.partial(scan_pass, path, layouts[path], backward,
                                           upstream[path], **options)  # fmt: skip
            runs[name]()  # compile and warm up
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in runs.items():
                times[name].append(median_time(run, fused_repeats))
        med = {name: statistics.median(t) for name, t in times.items()}
        lanes_per_s.append(fma_rate())
        roofline = roofline_seconds(length, n_state, pass_name, peak_rate(lanes_per_s))
        full, bare = med["channels-last"], med["channels-last, no softplus or gate"]
        frozen = med.get("channels-last, no gradients of B and C")
        rows.append({
            "N": n_state, "L": length, "pass": pass_name, "repeats": repeats,
            **{f"{name}_s": t for name, t in med.items()}, "roofline_s": roofline,
            "transposition_s": med["mamba_ssm layout"] - full, "prelude_s": full - bare,
            "bc_gradients_s": None if frozen is None else full - frozen,
            "layout_ratio": med["mamba_ssm layout"] / full,
        })  # fmt: skip
    return {"fma_lanes_per_s": lanes_per_s, "rows": rows}


def synchronized(fn, *args) -> None:
    fn(*args)
    torch.cuda.synchronize()


def bench_scan_cuda(lengths: list[int], states: list[int], repeats: int) -> dict:
    """On a GPU: the sequential PyTorch reference, the chunked parallel scan (the
    default without mamba_ssm) and mamba_ssm's kernels (when they import). Not yet
    run on a GPU."""
    from dynmultidep.ops.scan import _mamba_ssm_scan

    have_kernels = _mamba_ssm_scan() is not None
    paths = ("reference", "chunked", "cuda") if have_kernels else ("reference", "chunked")
    rows = []
    for n_state in states:
        for length in lengths:
            inputs = {k: v.detach().cuda().requires_grad_()
                      for k, v in scan_inputs(length, n_state).items()}  # fmt: skip
            upstream = torch.randn(BATCH, CHANNELS, length, device="cuda")
            for backward in (False, True):
                times = {}
                for path in paths:
                    run = functools.partial(synchronized, scan_pass, path, inputs, backward,
                                            upstream)  # fmt: skip
                    run()
                    times[path] = median_time(run, repeats)
                rows.append({
                    "N": n_state, "L": length, "pass": "fwd+bwd" if backward else "fwd",
                    "reference_s": times["reference"], "chunked_s": times["chunked"],
                    "mamba_ssm_s": times.get("cuda"),
                    "speedup": times["reference"] / times["cuda"] if "cuda" in times else None,
                    "chunked_speedup": times["reference"] / times["chunked"],
                })  # fmt: skip
    return {"device": torch.cuda.get_device_name(), "mamba_ssm": have_kernels, "rows": rows}
