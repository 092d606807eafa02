"""The cue families of the synthetic generator: deterministic, and each carrying its cue."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from dynmultidep.data.dvlog import read_dvlog_index
from dynmultidep.data.faces import FacePreparation, head_pose, normalize_landmarks
from dynmultidep.data.synthetic import (
    CUE_FAMILIES,
    SyntheticSpec,
    generate_corpus,
    manifest_differences,
    read_informative,
)
from dynmultidep.data.synthetic.cues import PHI, ar1, pause_mask
from dynmultidep.data.vlogs import load_vlogs
from dynmultidep.models.functionals import functionals
from scoring import probe_folds

NEW_FAMILIES = [c for c in CUE_FAMILIES if c != "bursts"]


def digest(root: Path, keep=lambda path: True) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and keep(p)):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


# The bursts corpus generator version 2 wrote before cue families existed (commit
# 96cf336~1, tiny preset, seed 3), by the SIMD paths numpy dispatches its float64
# exp, log, sin and cos to: AVX-512 (SKX) hosts round some of them differently from
# the others, so a corpus is the same on hosts of one kind, not bit for bit across kinds.
V2_BURSTS_DIGEST = {
    "avx512_skx": "e0ae3748132a5c3b0c69f3ba14b76caed369165b06341a72f857dbbf7f0b070b",
    "other": "9a3302d00b9565e48948447c806f61e4c06475ab837516a02be52448f19d860b",  # AVX2
}


def numpy_simd_kind() -> str:
    from numpy._core._multiarray_umath import __cpu_features__

    return "avx512_skx" if __cpu_features__.get("AVX512_SKX") else "other"


def test_the_default_bursts_corpus_is_unchanged(tmp_path):
    """Arrays and labels of a bursts corpus are those generator version 2 wrote before
    cue families existed (digests taken from that code on both kinds of host), so
    `make train` keeps its data."""
    root = tmp_path / "tiny"
    generate_corpus(SyntheticSpec(layout="dvlog", preset="tiny", seed=3), root)
    arrays_and_labels = digest(root, lambda p: p.suffix == ".npy" or p.name == "labels.csv")
    assert arrays_and_labels == V2_BURSTS_DIGEST[numpy_simd_kind()]


@pytest.mark.parametrize("cue", NEW_FAMILIES)
def test_each_family_is_deterministic_for_a_seed(tmp_path, cue):
    def make(name, seed):
        spec = SyntheticSpec(layout="dvlog", preset="tiny", seed=seed, cue=cue)
        generate_corpus(spec, tmp_path / name)
        return digest(tmp_path / name)

    assert make("a", 4) == make("b", 4) != make("c", 5)
    informative = read_informative(tmp_path / "a")
    assert len(informative) == 24 and set(informative.values()) <= {"audio", "video", "both"}


def test_cue_families_are_dvlog_only_and_recorded_in_the_manifest():
    with pytest.raises(ValueError, match="dvlog layout only"):
        SyntheticSpec(layout="lmvd", cue="pauses").resolved()
    with pytest.raises(ValueError, match="unknown cue"):
        SyntheticSpec(cue="sadness").resolved()
    spec = SyntheticSpec(preset="tiny", cue="slowed")
    assert spec.resolved()["cue"] == "slowed"
    # a folder written before cue families existed holds bursts
    old = {k: v for k, v in SyntheticSpec(preset="tiny").resolved().items() if k != "cue"}
    assert manifest_differences(old, SyntheticSpec(preset="tiny")) == {}
    assert manifest_differences(old, spec) == {"cue": ("bursts", "slowed")}


def test_ar1_is_stationary_with_unit_variance_and_its_coefficient():
    x = ar1(np.random.default_rng(0), 20000, 3, PHI)
    assert x.var(0) == pytest.approx(np.ones(3), abs=0.06)
    lag1 = (x[1:] * x[:-1]).mean(0) / x.var(0)
    assert lag1 == pytest.approx(np.full(3, PHI), abs=0.02)


def test_pauses_keep_the_share_of_silence_and_change_its_runs():
    rng = np.random.default_rng(0)
    short, long = pause_mask(rng, 50000, 2.0, 0.3), pause_mask(rng, 50000, 6.0, 0.3)

    def mean_run(voiced):
        silent = (~voiced).astype(int)
        starts = np.flatnonzero(np.diff(np.concatenate([[0], silent])) == 1)
        return silent.sum() / len(starts)

    assert (~short).mean() == pytest.approx(0.3, abs=0.02)
    assert (~long).mean() == pytest.approx(0.3, abs=0.03)
    assert mean_run(short) == pytest.approx(2.0, rel=0.1)
    assert mean_run(long) == pytest.approx(6.0, rel=0.1)


# ------------------------------------------------------- carrying the cue
@pytest.fixture(scope="module")
def family_corpora(tmp_path_factory):
    """D-Vlog-sized corpora of every family, lengths scaled by 1/8 (as the benchmark)."""
    cache = {}

    def make(cue):
        if cue not in cache:
            root = tmp_path_factory.mktemp("families") / cue
            spec = SyntheticSpec(preset="full", length_scale=0.125, seed=0, cue=cue)
            generate_corpus(spec, root)
            records = read_dvlog_index(root)
            cache[cue] = (root, records, load_vlogs(records, 25, 136))
        return cache[cue]

    return make


def scores(family_corpora, cue, features) -> tuple[float, float]:
    """(test accuracy of a logistic regression on ``features(vlog)``, majority class)."""
    _, records, vlogs = family_corpora(cue)
    return probe_folds(records, vlogs, features)


def per_channel(v, percentiles=()):
    x = torch.tensor(np.hstack([v.audio, v.video]), dtype=torch.float32)[None]
    f = functionals(x, torch.tensor([v.length]), percentiles)[0]
    if not percentiles:  # mean and standard deviation only
        f = f[: 2 * x.shape[2]]
    return f.numpy()


@pytest.mark.parametrize("cue", ["flat_affect", "slowed", "pauses"])
def test_functionals_see_the_families_whose_cue_is_in_one_channel(family_corpora, cue):
    accuracy, majority = scores(family_corpora, cue, lambda v: per_channel(v, (10, 50, 90)))
    assert accuracy > majority + 0.2


@pytest.mark.parametrize("cue", ["pauses", "cross_modal"])
def test_per_channel_mean_and_std_cannot_see_pauses_or_coupling(family_corpora, cue):
    accuracy, majority = scores(family_corpora, cue, per_channel)
    assert accuracy < majority + 0.06


def mouth_and_brows(v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mouth opening and brow height in face units, and the face-found mask."""
    face = normalize_landmarks(v.video)
    y = face[:, 68:]
    found = (v.video != 0).any(axis=1)
    return y[:, 57] - y[:, 51], y[:, 39] - y[:, 19], found


def test_cross_modal_cue_is_the_coupling_of_voice_and_face(family_corpora):
    """A statistic that reads both modalities jointly separates the classes."""

    def coupling(v):
        mouth, brows, found = mouth_and_brows(v)
        loud, pitch = v.audio[found, 0], v.audio[found, 10]
        if found.sum() < 3:
            return np.zeros(2)
        return np.array([np.corrcoef(loud, mouth[found])[0, 1],
                         np.corrcoef(pitch, brows[found])[0, 1]])  # fmt: skip

    accuracy, majority = scores(family_corpora, "cross_modal", coupling)
    assert accuracy > majority + 0.25


def test_one_modality_family_corrupts_the_other_modality(family_corpora):
    root, records, vlogs = family_corpora("one_modality")
    informative = read_informative(root)
    assert set(informative.values()) == {"audio", "video"}
    # the corrupted audio is noisier, sample by sample: its step-to-step change is larger
    change = np.array([np.abs(np.diff(v.audio[:, :10], axis=0)).mean() for v in vlogs])
    video_informative = np.array([informative[v.id] == "video" for v in vlogs])
    assert change[video_informative].mean() > 1.5 * change[~video_informative].mean()
    # and the cue follows the label only in the informative modality
    depressed = np.array([v.label == 1 for v in vlogs])
    mouth_std = np.array([mouth_and_brows(v)[0].std() for v in vlogs])
    clean = mouth_std[video_informative]
    assert (
        clean[depressed[video_informative]].mean()
        < 0.8 * clean[~depressed[video_informative]].mean()
    )


def test_head_motion_shows_in_the_pose_that_face_normalisation_removes(family_corpora):
    root, _, _ = family_corpora("head_motion")
    assert set(read_informative(root).values()) == {"video"}
    accuracy, majority = scores(family_corpora, "head_motion", lambda v: head_pose(v.video).std(0))
    assert accuracy > majority + 0.12
    shape = FacePreparation("similarity", head_pose=False)

    def shape_only(v):
        return per_channel(dataclasses.replace(v, video=shape.apply([v])[0].video))

    accuracy, majority = scores(family_corpora, "head_motion", shape_only)
    assert accuracy < majority + 0.06  # the expressions carry no cue
