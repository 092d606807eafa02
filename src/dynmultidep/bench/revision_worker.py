"""Child process of :mod:`dynmultidep.bench.revisions`: times the recipe model of
one source tree and prints the times as one JSON line.

    python revision_worker.py TREE MODE BATCH LENGTH REPEATS

``TREE`` is a checkout of this repository (its ``src`` and ``conf``); ``MODE`` is
``inference`` (eval mode under ``torch.inference_mode``) or ``step`` (forward,
backward and an Adam step). Nothing of ``dynmultidep`` is imported before
``TREE/src`` leads ``sys.path``, so the tree's own code is what runs; it must
have ``dynmultidep.bench.throughput.recipe_config``. The inputs and the step
are defined here, for every tree alike (and for :mod:`dynmultidep.bench.step`).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

MODES = ("inference", "step")


def recipe_inputs(batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded random features: audio ``(batch, length, 25)``, video ``(batch, length,
    136)`` and every vlog's length."""
    g = torch.Generator().manual_seed(0)
    audio = torch.randn(batch, length, 25, generator=g)
    video = torch.randn(batch, length, 136, generator=g)
    return audio, video, torch.full((batch,), length)


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


def main(tree: Path, mode: str, batch: int, length: int, repeats: int) -> dict:
    sys.path.insert(0, str(tree / "src"))
    from hydra.utils import instantiate

    import dynmultidep
    from dynmultidep.bench.throughput import recipe_config

    source = Path(dynmultidep.__file__).resolve()
    if not source.is_relative_to(tree.resolve()):
        raise RuntimeError(f"{tree}: imported dynmultidep from {source} instead")
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

    once()  # warm-up: kernels compiled or loaded, buffers allocated
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
