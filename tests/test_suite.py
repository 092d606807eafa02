"""The randomised cue suite: its prior, its corpora, and its jobs in the benchmark."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import numpy as np
import pytest

from conftest import CONF_DIR, REPO
from dynmultidep.data.dvlog import read_dvlog_index
from dynmultidep.data.synthetic import (
    SuiteCorpus,
    draw_suite,
    generate_suite_corpus,
    read_informative,
)
from dynmultidep.data.synthetic.random_cues import (
    CARRIERS,
    KINDS,
    N_RANGE,
    RandomCue,
    suite_corpus_from,
)
from dynmultidep.data.vlogs import load_vlogs
from dynmultidep.learnability.jobs import SUITE, LearnabilityJob, ModelSpec, ensure_corpus, run_job
from dynmultidep.learnability.report import suite_tables, suite_targets, summarize
from dynmultidep.learnability.runner import cached_result, suite_jobs
from scoring import probe_folds
from test_cues import digest, per_channel


def test_draws_are_deterministic_per_seed_and_independent_of_their_number():
    assert draw_suite(8, 3) == draw_suite(8, 3)
    assert draw_suite(12, 3)[:8] == draw_suite(8, 3)
    assert draw_suite(8, 3) != draw_suite(8, 4)


def test_draws_span_the_prior():
    suite = draw_suite(300, 100)
    kinds = [k for c in suite for k in c.cue.kinds]
    assert set(kinds) == set(KINDS)
    assert {len(c.cue.kinds) for c in suite} == {1, 2}
    assert {c.cue.carrier for c in suite} == set(CARRIERS)
    assert any(c.cue.corrupt_other for c in suite) and not all(
        c.cue.corrupt_other for c in suite if c.cue.carrier == "random")  # fmt: skip
    assert {c.shares for c in suite} == {"dvlog", "lmvd"}
    n = np.array([c.n for c in suite])
    assert N_RANGE[0] <= n.min() < 250 and 1300 < n.max() <= N_RANGE[1]
    strengths = np.array([c.cue.strength for c in suite])
    assert strengths.min() < 0.4 and strengths.max() > 0.9
    assert {c.cue.spread for c in suite} == {0.0, 0.15, 0.3, 0.5}
    assert {len(c.cue.audio_channels) for c in suite} == set(range(1, 7))
    assert {len(c.cue.expressions) for c in suite} == {1, 2, 3}
    phis = np.array([c.cue.phi for c in suite])
    assert phis.min() < 0.55 and phis.max() > 0.9
    assert not any({"pauses", "speech_rate"} <= set(c.cue.kinds) for c in suite)


def corpus_with(kinds, carrier="both", strength=1.0, n=300, shares="dvlog", **cue) -> SuiteCorpus:
    fields = dict(spread=0.0, corrupt_other=False, audio_channels=(0, 1, 5, 10),
                  expressions=(0, 1, 2), phi=0.8, noise=0.0)  # fmt: skip
    fields.update(cue)
    random_cue = RandomCue(kinds=tuple(kinds), strength=strength, carrier=carrier, **fields)
    return SuiteCorpus(suite_seed=7, index=0, cue=random_cue, n=n, shares=shares,
                       length_scale=0.15)  # fmt: skip


def probe(root) -> tuple[float, float]:
    """Test accuracy of a logistic regression on per-channel mean and std, and the
    majority class of the test fold."""
    records = read_dvlog_index(root)
    return probe_folds(records, load_vlogs(records, 25, 136), per_channel)


def test_a_suite_corpus_is_deterministic_and_records_its_draw(tmp_path):
    corpus = draw_suite(3, 11)[2]
    generate_suite_corpus(corpus, tmp_path / "a")
    generate_suite_corpus(corpus, tmp_path / "b")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    manifest = json.loads((tmp_path / "a" / "suite.json").read_text())
    assert suite_corpus_from(manifest) == corpus
    records = read_dvlog_index(tmp_path / "a")
    assert len(records) == corpus.n and {r.gender for r in records} <= {"f", "m"}
    assert set(read_informative(tmp_path / "a").values()) <= {"audio", "video", "both"}


@pytest.mark.parametrize("shares", ["dvlog", "lmvd"])
def test_a_strong_cue_is_found_and_no_cue_is_not(tmp_path, shares):
    strong = corpus_with(["flat_affect"], shares=shares)
    generate_suite_corpus(strong, tmp_path / "strong")
    accuracy, majority = probe(tmp_path / "strong")
    assert accuracy > majority + 0.2
    labels = [r.label for r in read_dvlog_index(tmp_path / "strong")]
    share = np.mean(labels)
    assert (0.55 < share < 0.65) if shares == "dvlog" else (0.45 < share < 0.55)
    none = dataclasses.replace(strong, cue=dataclasses.replace(strong.cue, strength=0.0))
    generate_suite_corpus(none, tmp_path / "none")
    accuracy, majority = probe(tmp_path / "none")
    assert accuracy < majority + 0.08


def test_a_random_carrier_records_each_vlogs_modality(tmp_path):
    corpus = corpus_with(["slowed"], carrier="random", corrupt_other=True, n=200)
    generate_suite_corpus(corpus, tmp_path / "c")
    assert set(read_informative(tmp_path / "c").values()) == {"audio", "video"}
    two = corpus_with(["loudness", "head_motion"], n=200)
    generate_suite_corpus(two, tmp_path / "two")
    assert set(read_informative(tmp_path / "two").values()) == {"both"}


def test_suite_jobs_read_their_corpus_and_run_through_train_py(tmp_path):
    corpus = corpus_with(["loudness"], n=160)
    (job,) = suite_jobs([corpus], [ModelSpec.parse("functionals")], seeds=(0,))
    assert job.size == SUITE and job.family == corpus.name and job.n == 160
    assert "dataset.synthetic=null" in job.overrides(tmp_path)
    root = ensure_corpus(job, tmp_path)
    assert (root / "suite.json").is_file()
    out = run_job(job, tmp_path, CONF_DIR)
    assert out["error"] is None, out["error"]
    assert out["suite"]["name"] == corpus.name and 0 <= out["test"]["acc"] <= 1
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / f"{job.key}.json").write_text(json.dumps(out))
    assert cached_result(tmp_path, job, CONF_DIR) == out


def suite_result(draw, model, acc, index):
    corpus = dataclasses.replace(draw_suite(index + 1, 0)[index])
    job = LearnabilityJob.of_draw(corpus, ModelSpec.parse(model), 0)
    return {**job.describe(), "key": job.key, "error": None, "model": model,
            "test": {"acc": acc, "macro_f1": acc, "auroc": acc},
            "val": {"acc": acc - 0.1, "loss": 1 - acc},
            "majority": 0.55, "routed_informative": None, "seconds": 1.0}  # fmt: skip


def test_suite_tables_and_targets():
    results = [
        suite_result(0, "functionals", 0.80, 0), suite_result(0, "dynmultidep", 0.82, 0),
        suite_result(0, "concat_fusion", 0.70, 0),
        suite_result(1, "functionals", 0.90, 1), suite_result(1, "dynmultidep", 0.84, 1),
        suite_result(1, "concat_fusion", 0.75, 1),
    ]  # fmt: skip
    rows = summarize(results)
    met = {t["target"]: t for t in suite_targets(rows)}
    mean = met["suite (2 draws): dynmultidep mean >= best other mean (functionals) - 1 point"]
    assert mean["measured"] == "-2.0 points" and not mean["met"]
    worst = met["suite: on every draw dynmultidep >= functionals - 5 points"]
    assert "-6.0 points" in worst["measured"] and not worst["met"]
    (title, header, matrix), (_, mean_header, means) = suite_tables(rows)
    assert header[:3] == ["draw", "cue", "majority"] and matrix[-1][0] == "mean (2 draws)"
    assert matrix[0][1] == draw_suite(1, 0)[0].summary()
    # the means over draws, with the validation scores choices are made on
    assert mean_header[:3] == ["model", "val acc", "val log-loss"]
    by_model = {row[0]: row for row in means}
    assert by_model["dynmultidep"][1:5] == ["0.730", "0.170", "0.830", "0.830"]
    assert by_model["dynmultidep"][5] == "-6.0 points"
    assert by_model["functionals"][5] == "+0.0 points"


def test_the_script_plans_the_suite():
    spec = importlib.util.spec_from_file_location(
        "learnability_script", REPO / "scripts" / "learnability.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    jobs = script.choose_suite_jobs(script.parse_args(["--suite", "random", "--draws", "3"]))
    assert len(jobs) == 3 * 6 and {j.suite.suite_seed for j in jobs} == {0}
    dev = script.parse_args(["--suite", "random", "--draws", "2", "--suite-seed", "100",
                             "--models", "functionals", "--seeds", "1,2"])  # fmt: skip
    jobs = script.choose_suite_jobs(dev)
    assert {(j.suite.suite_seed, j.model.label, j.seed) for j in jobs} == {
        (100, "functionals", 1), (100, "functionals", 2)}  # fmt: skip
