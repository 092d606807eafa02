"""Synthetic twins of D-Vlog and LMVD, in the corpora's own file layouts.

The real corpora are licensed; these twins let the project train, test and
benchmark out of the box. They match the published counts and length
distribution, and their labels follow a planted cue: by default short
oscillation bursts (:mod:`.signals`), or one of the cue families of
:mod:`.cues` (``cue=flat_affect`` ...), each after a behavioural marker of
depression.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dynmultidep.data.synthetic.cues import CUES
from dynmultidep.data.synthetic.interviews import InterviewTwinSpec, write_twin
from dynmultidep.data.synthetic.plan import PlannedVlog, plan_corpus
from dynmultidep.data.synthetic.random_cues import (
    N_RANGE,
    SuiteCorpus,
    draw_suite,
    write_suite_manifest,
)
from dynmultidep.data.synthetic.writers import CUES_FILE, LAYOUTS, WRITERS

MANIFEST = "synthetic.json"
# Per layout: bump a layout's version whenever the files a seed produces in it change
# (lmvd-release 3: the OpenFace CSVs gained the gaze, pose and AU columns).
GENERATOR_VERSIONS = {"dvlog": 2, "lmvd": 2, "lmvd-release": 3}
CUE_FAMILIES = ("bursts", *CUES)
# Manifest keys added after a generator version was released, with the value that
# folders written before them were generated with.
MANIFEST_DEFAULTS = {"cue": "bursts"}


@dataclass(frozen=True)
class Preset:
    n: int | None  # vlogs; None = the real corpus size
    length_scale: float  # multiplies the real length distribution


PRESETS = {
    "full": Preset(n=None, length_scale=1.0),  # D-Vlog: 961 vlogs, real lengths
    "small": Preset(n=480, length_scale=0.25),  # the default corpus: trains in minutes on a CPU
    "tiny": Preset(n=24, length_scale=0.05),  # unit tests
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Everything a synthetic corpus is a deterministic function of."""

    layout: str = "dvlog"
    preset: str = "small"
    n: int | None = None  # overrides the preset's
    length_scale: float | None = None  # overrides the preset's
    seed: int = 0
    cue: str = "bursts"  # what separates the classes: one of CUE_FAMILIES

    def resolved(self) -> dict:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; use one of {', '.join(LAYOUTS)}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; use one of {', '.join(PRESETS)}")
        if self.cue not in CUE_FAMILIES:
            raise ValueError(f"unknown cue {self.cue!r}; use one of {', '.join(CUE_FAMILIES)}")
        if self.cue != "bursts" and self.layout != "dvlog":
            raise ValueError(
                f"cue {self.cue!r} is generated in the dvlog layout only (its descriptors "
                "are D-Vlog's eGeMAPS columns)"
            )
        preset = PRESETS[self.preset]
        return {
            "layout": self.layout,
            "cue": self.cue,
            "n": preset.n if self.n is None else int(self.n),
            "length_scale": preset.length_scale
            if self.length_scale is None
            else float(self.length_scale),
            "seed": int(self.seed),
            "version": GENERATOR_VERSIONS[self.layout],
        }

    def plan(self) -> list[PlannedVlog]:
        spec = self.resolved()
        corpus = "dvlog" if spec["layout"] == "dvlog" else "lmvd"
        return plan_corpus(corpus, spec["n"], spec["seed"], spec["length_scale"])


def generate_corpus(spec: SyntheticSpec, out: str | Path, force: bool = False) -> list[PlannedVlog]:
    """Write the corpus described by ``spec`` to ``out``.

    The files are written to a hidden sibling folder and moved into place at
    the end, so ``out`` is either complete or absent, never half-written.

    Raises:
        FileExistsError: ``out`` is a non-empty folder and ``force`` is False.
    """
    plan = spec.plan()

    def write(folder: Path) -> None:
        WRITERS[spec.layout](folder, plan, spec.seed, spec.cue)
        manifest = {**spec.resolved(), "preset": spec.preset}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    _write_folder(Path(out), force, write)
    return plan


def generate_suite_corpus(
    corpus: SuiteCorpus, out: str | Path, force: bool = False
) -> list[PlannedVlog]:
    """Write one draw of the randomised suite (:mod:`.random_cues`) to ``out``, in
    D-Vlog's layout, as :func:`generate_corpus` does (never half-written)."""
    plan = plan_corpus(corpus.shares, corpus.n, corpus.seed, corpus.length_scale, N_RANGE[1])
    if corpus.shares == "lmvd":  # LMVD has no gender; D-Vlog's layout needs one
        rng = np.random.default_rng([corpus.seed, 3])
        plan = [replace(v, gender=str(rng.choice(["f", "m"]))) for v in plan]

    def write(folder: Path) -> None:
        WRITERS["dvlog"](folder, plan, corpus.seed, corpus.cue)
        write_suite_manifest(folder, corpus)

    _write_folder(Path(out), force, write)
    return plan


def generate_interview_twin(spec: InterviewTwinSpec, out: str | Path, force: bool = False,
                            workers: int = 1) -> None:  # fmt: skip
    """Write the interview twin described by ``spec`` (:mod:`.interviews`) to ``out``,
    with its manifest, as :func:`generate_corpus` does (never half-written);
    ``workers`` processes write its sessions."""

    def write(folder: Path) -> None:
        write_twin(spec, folder, workers)
        manifest = {**spec.resolved(), "preset": spec.preset}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")

    _write_folder(Path(out), force, write)


def _write_folder(out: Path, force: bool, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a hidden sibling folder of ``out``, then move it into place."""
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out}: folder exists and is not empty (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        write(partial)
        if out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def read_manifest(root: str | Path) -> dict | None:
    path = Path(root) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def manifest_differences(found: dict, spec: SyntheticSpec) -> dict[str, tuple]:
    """``{key: (found, wanted)}`` where a corpus's manifest differs from ``spec``."""
    wanted = spec.resolved()
    differences = {}
    for key, value in wanted.items():
        have = found.get(key, MANIFEST_DEFAULTS.get(key))
        if have != value:
            differences[key] = (have, value)
    return differences


def read_informative(root: str | Path) -> dict[str, str]:
    """``{id: modality}`` from a synthetic corpus's ``cues.csv``: which modality
    carries each vlog's cue (``audio``, ``video`` or ``both``); ``{}`` without one."""
    path = Path(root) / CUES_FILE
    if not path.is_file():
        return {}
    rows = path.read_text().splitlines()[1:]
    return dict(row.split(",", 1) for row in rows if row)


__all__ = [
    "CUE_FAMILIES",
    "InterviewTwinSpec",
    "PRESETS",
    "LAYOUTS",
    "Preset",
    "SuiteCorpus",
    "SyntheticSpec",
    "draw_suite",
    "generate_corpus",
    "generate_interview_twin",
    "generate_suite_corpus",
    "manifest_differences",
    "read_informative",
    "read_manifest",
]
