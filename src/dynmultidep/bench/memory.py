"""Peak memory of a recipe's model against sequence length (batch 1, CPU): the D-Vlog
recipe, and the paper recipe with soft gates so that every part (both MTEM branches,
every expert and fusion operation) runs at every length.

Each measurement runs in a fresh process (``python -m dynmultidep.bench.memory``), so
that memory an earlier measurement left with the allocator does not hide the next one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from dynmultidep.bench import compose_train
from dynmultidep.bench.timing import median_time, peak_extra_memory


def recipe_model(
    conf_dir: Path, experiment: str = "dvlog_dynmultidep", overrides: tuple[str, ...] = ()
) -> tuple[torch.nn.Module, int, int]:
    """The model of a published recipe (``conf/experiment/``), untrained, and its input
    widths ``(audio_dim, video_dim)``."""
    from hydra.utils import instantiate

    cfg = compose_train(conf_dir, [f"experiment={experiment}", *overrides])
    model = instantiate(cfg.model, _convert_="all")
    return model, cfg.model.audio_dim, cfg.model.video_dim


def measure(
    conf_dir: Path, length: int, backward: bool, experiment: str = "dvlog_dynmultidep",
    overrides: tuple[str, ...] = (),
) -> dict:  # fmt: skip
    """Peak extra memory and time of one forward (no grad) or forward+backward pass."""
    torch.manual_seed(0)
    model, audio_dim, video_dim = recipe_model(conf_dir, experiment, overrides)
    audio = torch.randn(1, length, audio_dim)
    video = torch.randn(1, length, video_dim)
    lengths = torch.tensor([length])

    def one_pass() -> None:
        if backward:
            model.train()
            out = model(audio, video, lengths)
            (out.logits.sum() + out.aux_loss).backward()
            model.zero_grad(set_to_none=True)
        else:
            model.eval()
            with torch.no_grad():
                model(audio, video, lengths)

    warm_audio, warm_video = audio[:, :64], video[:, :64]  # compile the kernels first
    model.eval()
    with torch.no_grad():
        model(warm_audio, warm_video, torch.tensor([64]))
    peak = peak_extra_memory(one_pass)
    return {"L": length, "pass": "fwd+bwd" if backward else "fwd", "peak_bytes": peak,
            "seconds": median_time(one_pass, 1)}  # fmt: skip


# label -> (recipe, overrides) measured
MODELS = {
    "dynmultidep": ("dvlog_dynmultidep", ()),
    "dynmultidep_paper": ("dvlog_dynmultidep_paper", ("model.hard_gate=false",)),
}


def bench_memory(
    conf_dir: Path, lengths: list[int], models=("dynmultidep",),
    on_row: Callable[[str], None] | None = None,
) -> list[dict]:  # fmt: skip
    """One fresh process per (model, pass, length); ``models``: labels of ``MODELS``;
    ``on_row`` hears of each as it starts (the run's progress)."""
    rows = []
    for model in models:
        experiment, overrides = MODELS[model]
        for backward in (False, True):
            for length in lengths:
                if on_row is not None:
                    on_row(f"{model}, L {length}, {'fwd+bwd' if backward else 'fwd'}")
                args = [sys.executable, "-m", __name__, str(conf_dir), str(length)]
                args += ["--experiment", experiment, *(f"--override={o}" for o in overrides)]
                args += ["--backward"] if backward else []
                done = subprocess.run(args, capture_output=True, text=True, check=False)
                row = {"model": model, "L": length, "pass": "fwd+bwd" if backward else "fwd"}
                if done.returncode != 0:
                    row["error"] = (done.stderr.strip().splitlines() or ["failed"])[-1]
                else:
                    row.update(json.loads(done.stdout.strip().splitlines()[-1]))
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="one memory measurement (used by bench)")
    parser.add_argument("conf_dir", type=Path)
    parser.add_argument("length", type=int)
    parser.add_argument("--backward", action="store_true")
    parser.add_argument("--experiment", default="dvlog_dynmultidep")
    parser.add_argument("--override", action="append", default=[])
    args = parser.parse_args()
    row = measure(args.conf_dir, args.length, args.backward, args.experiment, tuple(args.override))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
