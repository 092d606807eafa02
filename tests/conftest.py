"""Shared helpers: small hand-made corpora and cached synthetic ones."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dynmultidep.data.synthetic import SyntheticSpec, generate_corpus


def pytest_sessionstart(session):
    """Compile the numba kernels not yet cached, their groups in parallel processes
    (dynmultidep.ops.precompile), before any test waits on one alone.
    DYNMULTIDEP_PRECOMPILE=0 skips it."""
    if os.environ.get("DYNMULTIDEP_PRECOMPILE", "1") == "0":
        return
    from dynmultidep.ops.backends import fused_available

    if not fused_available():
        return
    from dynmultidep.ops.precompile import precompile

    start = time.perf_counter()
    seconds = precompile()
    if seconds:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            groups = ", ".join(seconds)
            reporter.write_line(f"compiled numba kernels ({groups}) in "
                                f"{time.perf_counter() - start:.0f} s")  # fmt: skip


@dataclass
class HandVlog:
    id: str
    label: str = "depression"  # D-Vlog spelling; LMVD writers map it to 1/0
    gender: str = "f"
    fold: str = "train"
    audio_steps: int = 12
    video_steps: int = 12


def default_vlogs() -> list[HandVlog]:
    """Two vlogs per fold, both genders in train."""
    return [
        HandVlog("0", "depression", "f", "train", 12, 12),
        HandVlog("1", "normal", "m", "train", 9, 9),
        HandVlog("2", "depression", "f", "valid", 7, 7),
        HandVlog("3", "normal", "f", "valid", 5, 5),
        HandVlog("4", "depression", "m", "test", 6, 6),
        HandVlog("5", "normal", "f", "test", 8, 8),
    ]


def write_dvlog(root: Path, vlogs: list[HandVlog] | None = None, seed: int = 0) -> Path:
    """A D-Vlog-layout corpus with random float64 features; returns ``root``."""
    rng = np.random.default_rng(seed)
    vlogs = default_vlogs() if vlogs is None else vlogs
    lines = ["index,label,duration,gender,fold"]
    for v in vlogs:
        folder = root / v.id
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{v.id}_acoustic.npy", rng.normal(size=(v.audio_steps, 25)))
        np.save(folder / f"{v.id}_visual.npy", rng.normal(300, 50, size=(v.video_steps, 136)))
        lines.append(f"{v.id},{v.label},{min(v.audio_steps, v.video_steps)}.25,{v.gender},{v.fold}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


def write_lmvd(root: Path, vlogs: list[HandVlog], seed: int = 0) -> Path:
    """A prepared-LMVD-layout corpus with random float32 features."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "visual").mkdir(parents=True, exist_ok=True)
    lines = ["index,label,fold"]
    for v in vlogs:
        np.save(
            root / "audio" / f"{v.id}.npy", rng.normal(size=(v.audio_steps, 128)).astype(np.float32)
        )
        visual = rng.normal(size=(v.video_steps, 136)).astype(np.float32)
        np.save(root / "visual" / f"{v.id}_visual.npy", visual)
        lines.append(f"{v.id},{int(v.label == 'depression')},{v.fold}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def dvlog_root(tmp_path: Path) -> Path:
    return write_dvlog(tmp_path / "dvlog")


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory):
    """``synthetic_corpus(layout, preset="tiny", **spec)`` -> (root, plan), cached per session."""
    cache: dict = {}

    def make(layout: str, preset: str = "tiny", **kwargs):
        key = (layout, preset, tuple(sorted(kwargs.items())))
        if key not in cache:
            spec = SyntheticSpec(layout=layout, preset=preset, **kwargs)
            root = tmp_path_factory.mktemp("synthetic") / layout
            cache[key] = (root, generate_corpus(spec, root))
        return cache[key]

    return make


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
REPO = CONF_DIR.parent

# A model small enough that a test run takes seconds.
TINY_MODEL = [
    "model.d_model=16",
    "model.d_ffn=32",
    "model.expand=1",
    "model.d_state=4",
    "model.gate_hidden=8",
]
# Quiet and quick training for tests.
QUIET = [
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
]


def compose_config(name: str, overrides=()):
    """The config ``conf/<name>.yaml`` composed with ``overrides``, as the entry points do."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def run_script(script: str, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python src/<script>.py overrides...`` from the repository root, W&B offline."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, f"src/{script}.py", *overrides],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def tiny_synthetic(tmp_path: Path) -> list[str]:
    """Overrides for a seconds-long run on the tiny synthetic corpus under ``tmp_path``."""
    return [
        "dataset.synthetic.preset=tiny",
        f"dataset.root={tmp_path}/corpus",
        "dataset.batch_size=8",
        *TINY_MODEL,
        *QUIET,
    ]
