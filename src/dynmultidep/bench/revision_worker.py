"""Child process of :mod:`dynmultidep.bench.revisions`: times the recipe model (or
the selective scan) of one source tree and prints the times as one JSON line.

    python revision_worker.py TREE MODE BATCH LENGTH REPEATS

``TREE`` is a checkout of this repository (its ``src`` and ``conf``); ``MODE`` is
``inference`` (eval mode under ``torch.inference_mode``) or ``step`` (forward,
backward and an Adam step) of the recipe model, or ``scan`` (forward without
gradients) or ``scan-step`` (forward and backward) of the fused selective scan in
the Mamba blocks' channels-last layout at ``d_inner`` 1024 and N 16, the shape of
the bench's scan targets; ``scan-mamba`` and ``scan-step-mamba`` time the same
through ``selective_scan`` in mamba_ssm's layout. Nothing of ``dynmultidep`` is
imported before ``TREE/src`` leads ``sys.path``, so the tree's own code is what
runs; the model modes need ``dynmultidep.bench.throughput.recipe_config``. The
inputs and the step are defined here, for every tree alike (and for
:mod:`dynmultidep.bench.step`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

MODES = ("inference", "step", "scan", "scan-step", "scan-mamba", "scan-step-mamba")
SCAN_CHANNELS, SCAN_STATES = 1024, 16


def scan_mode(mode: str) -> tuple[bool, bool]:
    """``(backward, mamba)`` of a ``scan*`` mode: whether it times the backward too,
    and whether in mamba_ssm's layout."""
    return mode.startswith("scan-step"), mode.endswith("-mamba")


def describe(mode: str) -> str:
    """What ``mode`` times, for a table's title."""
    if mode.startswith("scan"):
        backward, mamba = scan_mode(mode)
        passes = "forward+backward" if backward else "forward"
        layout = "mamba_ssm's layout" if mamba else "channels-last"
        return (f"Selective scan (fused, {layout}, d_inner {SCAN_CHANNELS}, "
                f"N {SCAN_STATES}), {passes}")  # fmt: skip
    return f"Recipe model, {mode}"


def recipe_inputs(batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded random features: audio ``(batch, length, 25)``, video ``(batch, length,
    136)`` and every vlog's length."""
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(batch, length, 25, generator=g)
    video = torch.randn(batch, length, 136, generator=g)
    return audio, video, torch.full((batch,), length)


def scan_inputs(
    batch: int, length: int, grad: bool, mamba: bool = False
) -> dict[str, torch.Tensor]:
    """Seeded inputs of ``selective_scan_channels_last`` (as the bench's scan draws
    them): ``u, delta, z (batch, length, d_inner)``, ``B, C (batch, length, N)``; with
    ``mamba`` the same values in mamba_ssm's layout, ``(batch, d_inner | N, length)``."""
    g = torch.Generator().manual_seed(0)
    seq = (batch, length, SCAN_CHANNELS)
    inputs = {
        "u": torch.randn(seq, generator=g), "delta": torch.randn(seq, generator=g),
        "A": -torch.rand(SCAN_CHANNELS, SCAN_STATES, generator=g) * 4 - 0.1,
        "B": torch.randn(batch, length, SCAN_STATES, generator=g),
        "C": torch.randn(batch, length, SCAN_STATES, generator=g),
        "D": torch.randn(SCAN_CHANNELS, generator=g), "z": torch.randn(seq, generator=g),
        "delta_bias": torch.randn(SCAN_CHANNELS, generator=g),
    }  # fmt: skip
    if mamba:
        inputs = {k: v.transpose(1, 2).contiguous() if v.dim() == 3 else v
                  for k, v in inputs.items()}  # fmt: skip
    return {k: v.requires_grad_(grad) for k, v in inputs.items()}


def scan_call(batch: int, length: int, backward: bool, mamba: bool) -> Callable[[], None]:
    """One fused scan (and its backward) of the tree on :func:`scan_inputs`, in
    mamba_ssm's layout through ``selective_scan`` with ``mamba``."""
    from dynmultidep.ops.scan import selective_scan, selective_scan_channels_last

    scan = selective_scan if mamba else selective_scan_channels_last
    inputs = scan_inputs(batch, length, backward, mamba)
    upstream = torch.randn(batch, length, SCAN_CHANNELS, generator=torch.Generator().manual_seed(1))
    if mamba:
        upstream = upstream.transpose(1, 2).contiguous()

    def once() -> None:
        if backward:  # as dynmultidep.bench.scan.clear_gradients (not in older trees)
            for value in inputs.values():
                value.grad = None
        with torch.set_grad_enabled(backward):
            y = scan(**inputs, delta_softplus=True, backend="fused")
            if backward:
                y.backward(upstream)

    return once


def train_step(net, optimizer, inputs: tuple, autocast=nullcontext) -> None:
    """Forward (under ``autocast()``), a loss on the logits plus the model's auxiliary
    loss, backward and an optimiser step."""
    with autocast():
        out = net(*inputs)
        loss = out.logits.float().square().mean()
        if out.aux_loss is not None:
            loss = loss + out.aux_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def recipe_call(tree: Path, mode: str, batch: int, length: int) -> Callable[[], None]:
    """One inference or training step of the tree's recipe model."""
    from hydra.utils import instantiate

    from dynmultidep.bench.throughput import recipe_config

    net = instantiate(recipe_config(tree / "conf", "tiny", ()).model)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    inputs = recipe_inputs(batch, length)

    def once() -> None:
        if mode == "inference":
            net.eval()
            with torch.inference_mode():
                net(*inputs)
            return
        net.train()
        train_step(net, optimizer, inputs)

    return once


WARM_UP_S = 2.0


def warm_up(once: Callable[[], None]) -> None:
    """Untimed calls until ``WARM_UP_S`` seconds have passed: the first compiles or
    loads the kernels and allocates buffers, and the hosts here run a process's
    first second or so of work at about half speed (BENCHMARKS.md, "AVX2: AMD
    EPYC, Zen 3")."""
    start = time.perf_counter()
    once()
    while time.perf_counter() - start < WARM_UP_S:
        once()


def main(tree: Path, mode: str, batch: int, length: int, repeats: int) -> dict:
    sys.path.insert(0, str(tree / "src"))
    import dynmultidep

    source = Path(dynmultidep.__file__).resolve()
    if not source.is_relative_to(tree.resolve()):
        raise RuntimeError(f"{tree}: imported dynmultidep from {source} instead")
    if mode.startswith("scan"):
        once = scan_call(batch, length, *scan_mode(mode))
    else:
        once = recipe_call(tree, mode, batch, length)
    warm_up(once)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return {"tree": str(tree), "mode": mode, "times_s": times}


if __name__ == "__main__":
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    tree_arg, mode_arg, *numbers = sys.argv[1:]
    if mode_arg not in MODES:
        sys.exit(f"unknown mode {mode_arg!r}; use {' or '.join(MODES)}")
    print(json.dumps(main(Path(tree_arg), mode_arg, *map(int, numbers))))
