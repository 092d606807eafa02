"""The synthetic twins: layout, statistics, determinism and a learnable signal."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dynmultidep.data.dvlog import read_dvlog_index
from dynmultidep.data.synthetic import SyntheticSpec, generate_corpus, read_manifest
from dynmultidep.data.synthetic import writers as synthetic_writers
from dynmultidep.data.synthetic.plan import (
    DVLOG_COUNTS,
    DVLOG_LENGTH_STATS,
    LMVD_COUNTS,
    length_stats,
    lmvd_ids,
    plan_corpus,
)
from dynmultidep.data.vlogs import load_vlogs
from scoring import fit_and_score


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_full_dvlog_plan_has_the_published_counts_and_length_quantiles():
    plan = plan_corpus("dvlog", None, seed=0)
    assert Counter((v.fold, v.label, v.gender) for v in plan) == DVLOG_COUNTS
    stats = length_stats(np.array([v.length for v in plan]))
    for name, real in DVLOG_LENGTH_STATS.items():
        assert stats[name] == pytest.approx(real, rel=0.03), name
    lengths = np.array([v.length for v in plan])
    labels = np.array([v.label for v in plan])
    ratio = lengths[labels == 1].mean() / lengths[labels == 0].mean()
    assert ratio == pytest.approx(640 / 536, rel=0.05)  # depressed vlogs are longer


def test_full_lmvd_plan_has_the_split_counts_and_the_release_ids():
    plan = plan_corpus("lmvd", None, seed=0)
    assert Counter((v.fold, v.label, v.gender) for v in plan) == LMVD_COUNTS
    assert sorted(v.id for v in plan) == sorted(lmvd_ids())
    assert {"001", "0602", "1117", "1824"} <= {v.id for v in plan}
    assert "1424" not in {v.id for v in plan}
    assert np.mean([v.length for v in plan]) == pytest.approx(420, rel=0.05)


def test_small_plans_keep_every_fold_label_and_gender():
    plan = plan_corpus("dvlog", 160, seed=0)
    assert set(Counter((v.fold, v.label, v.gender) for v in plan)) == set(DVLOG_COUNTS)
    assert len({v.id for v in plan}) == 160


def test_dvlog_layout_is_the_released_one(synthetic_corpus):
    root, plan = synthetic_corpus("dvlog", "small")
    header, *rows = (root / "labels.csv").read_text().splitlines()
    assert header == "index,label,duration,gender,fold"
    assert len(rows) == len(plan) == 480
    first = rows[0].split(",")
    assert first[1] in ("depression", "normal") and first[3] in ("m", "f")
    audio = np.load(root / first[0] / f"{first[0]}_acoustic.npy")
    visual = np.load(root / first[0] / f"{first[0]}_visual.npy")
    assert audio.dtype == visual.dtype == np.float64
    assert audio.shape[1] == 25 and visual.shape[1] == 136
    mismatched = zero_rows = 0
    for record in read_dvlog_index(root):
        a, v = np.load(record.audio_path), np.load(record.video_path)
        mismatched += len(a) != len(v)
        zero_rows += int((v == 0).all(axis=1).sum())
    assert mismatched == max(1, round(14 / 961 * len(plan)))  # D-Vlog's share: 14 of 961
    assert zero_rows > 0  # frames where no face was found
    assert read_manifest(root)["seed"] == 0


def test_generation_is_deterministic_for_a_seed(tmp_path):
    spec = SyntheticSpec(layout="dvlog", preset="tiny", seed=4)
    generate_corpus(spec, tmp_path / "a")
    generate_corpus(spec, tmp_path / "b")
    generate_corpus(SyntheticSpec(layout="dvlog", preset="tiny", seed=5), tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_a_failed_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(root, plan, seed, cue):
        (root / "labels.csv").write_text("index\n")
        raise RuntimeError("disk full")

    monkeypatch.setitem(synthetic_writers.WRITERS, "dvlog", broken)
    monkeypatch.setattr("dynmultidep.data.synthetic.WRITERS", synthetic_writers.WRITERS)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_corpus(SyntheticSpec(preset="tiny"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_corpus_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "out"
    generate_corpus(SyntheticSpec(preset="tiny"), out)
    with pytest.raises(FileExistsError, match="not empty"):
        generate_corpus(SyntheticSpec(preset="tiny", seed=1), out)
    generate_corpus(SyntheticSpec(preset="tiny", seed=1), out, force=True)
    assert read_manifest(out)["seed"] == 1


def local_variability(x: np.ndarray, window: int = 12) -> np.ndarray:
    """``(T, D)`` -> ``(D,)``: mean of the 3 largest variances over sliding windows."""
    if len(x) <= window:
        return np.zeros(x.shape[1])
    zero = np.zeros((1, x.shape[1]))
    total, total_sq = np.cumsum(np.vstack([zero, x]), 0), np.cumsum(np.vstack([zero, x * x]), 0)
    mean = (total[window:] - total[:-window]) / window
    variance = (total_sq[window:] - total_sq[:-window]) / window - mean * mean
    return np.sort(variance, axis=0)[-3:].mean(axis=0)


def test_labels_are_learnable_from_time_but_not_from_averages(tmp_path):
    """Time-averaged features carry nothing; a crude detector of local bursts does.

    Both are logistic regressions trained on the train and valid folds of a
    D-Vlog-sized twin with short lengths, scored on its 212 test vlogs.
    """
    root = tmp_path / "corpus"
    generate_corpus(SyntheticSpec(preset="small", n=961, seed=0), root)
    records = read_dvlog_index(root)
    vlogs = load_vlogs(records, 25, 136)
    folds = np.array([r.fold for r in records])
    labels = np.array([v.label for v in vlogs])
    train, test = folds != "test", folds == "test"
    features = [np.hstack([v.audio, v.video]) for v in vlogs]
    pooled = np.concatenate([f for f, t in zip(features, train, strict=True) if t])
    mu, sd = pooled.mean(0), pooled.std(0) + 1e-6
    averages = np.stack([((f - mu) / sd).mean(0) for f in features])
    bursts = np.stack([local_variability((f - mu) / sd) for f in features])
    majority = max(labels[test].mean(), 1 - labels[test].mean())
    average_only = fit_and_score(averages[train], labels[train], averages[test], labels[test])
    temporal = fit_and_score(bursts[train], labels[train], bursts[test], labels[test])
    assert average_only < majority + 0.05
    assert temporal > majority + 0.12
