"""DAIC-WOZ and E-DAIC read from their releases: per-second aggregation checked by hand,
both twins in both layouts (archives and folders), the quirks, and every bad input."""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dynmultidep.data.interviews.corpus import read_prepared_index
from dynmultidep.data.interviews.feature_sets import FEATURE_SETS, parse_sets, set_columns
from dynmultidep.data.interviews.prepare import (
    InterviewOptions,
    prepare,
    prepare_unlabelled,
    prepared_root,
    read_report,
)
from dynmultidep.data.interviews.release import Session
from dynmultidep.data.interviews.seconds import per_second
from dynmultidep.data.interviews.splits import read_splits
from dynmultidep.data.interviews.tables import parse_table
from dynmultidep.data.synthetic import InterviewTwinSpec, generate_interview_twin
from dynmultidep.data.synthetic.interviews import plan_sessions, write_twin
from dynmultidep.errors import DataError

DEFAULT_SETS = {
    "daic_woz": (("covarep", "formant"), ("aus", "gaze", "pose", "landmarks")),
    "edaic": (("egemaps", "mfcc", "densenet201"), ("pose", "gaze", "aus")),
}


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """``twin(corpus, files)`` -> (release root, spec): a tiny twin, made once per module."""
    made = {}

    def make(corpus: str, files: str = "archives") -> tuple[Path, InterviewTwinSpec]:
        if (corpus, files) not in made:
            spec = InterviewTwinSpec(corpus, "tiny", files=files)
            root = tmp_path_factory.mktemp("twins") / f"{corpus}_{files}"
            generate_interview_twin(spec, root)
            made[corpus, files] = root, spec
        return made[corpus, files]

    return make


def options(corpus: str, participant_only: bool = False) -> InterviewOptions:
    audio, visual = DEFAULT_SETS[corpus]
    return InterviewOptions(corpus, audio, visual, participant_only)


def copy_release(root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "release"
    shutil.copytree(root, out)
    return out


# ------------------------------------------------------------- per second, by hand
def test_per_second_means_the_valid_frames_of_each_second_and_zeroes_empty_ones():
    times = np.array([0.0, 0.4, 0.99, 1.5, 3.2, 3.7, 4.1])
    values = np.array([[1, 10], [3, 20], [5, 30], [7, 40], [2, 2], [4, 6], [9, 9]], float)
    valid = np.array([True, True, False, False, True, True, True])
    out = per_second(times, values, valid, steps=4)  # 4.1 is past the last step
    expected = [[2, 15], [0, 0], [0, 0], [3, 4]]  # second 1: its one frame is invalid
    np.testing.assert_allclose(out, expected)
    assert out.dtype == np.float32


def test_per_second_sorts_frames_whose_timestamps_run_backwards():
    out = per_second(np.array([1.2, 0.5, 1.8]), np.array([[2.0], [4.0], [6.0]]),
                     np.ones(3, bool), 2)  # fmt: skip
    np.testing.assert_allclose(out, [[4], [4]])


def covarep_rows(seconds: int) -> np.ndarray:
    """COVAREP frames at 100 Hz: second 0 half voiced, second 1 unvoiced, then scrubbed."""
    columns = FEATURE_SETS["daic_woz"]["covarep"].columns
    rows = np.zeros((100 * seconds, len(columns)))
    t = np.arange(len(rows))
    rows[:, columns.index("F0")] = 100 + t  # a voice-quality column
    rows[:, columns.index("MCEP_0")] = t  # a spectral column
    rows[:50, columns.index("VUV")] = 1  # the first half second is voiced
    rows[200:] = 0  # scrubbed: all zero
    return rows


def test_covarep_voice_quality_counts_voiced_frames_and_nothing_counts_scrubbed_ones(tmp_path):
    rows = covarep_rows(3)
    folder = tmp_path / "300_P"
    folder.mkdir()
    np.savetxt(folder / "300_COVAREP.csv", rows, delimiter=",", fmt="%.6g")
    session = Session("300", folder)
    fs = FEATURE_SETS["daic_woz"]["covarep"]
    out = fs.seconds(session, session.read(fs.file_names("300")))
    columns = fs.columns
    assert out.shape == (3, 74)
    # F0 of second 0: frames 0..49 are voiced, values 100..149: mean 124.5
    assert out[0, columns.index("F0")] == pytest.approx(124.5)
    assert out[1, columns.index("F0")] == 0  # no voiced frame in second 1
    assert out[0, columns.index("VUV")] == pytest.approx(0.5)  # the voiced share
    # MCEP_0 counts every frame that is not scrubbed. Frame 0 is 0 in MCEP_0 but not
    # all zero (F0 is 100), so it counts: second 0 is the mean of 0..99, second 1 of 100..199
    assert out[0, columns.index("MCEP_0")] == pytest.approx(49.5)
    assert out[1, columns.index("MCEP_0")] == pytest.approx(149.5)
    np.testing.assert_array_equal(out[2], 0)  # only scrubbed frames: a zero row


def test_clnf_frames_without_a_face_do_not_count(tmp_path):
    folder = tmp_path / "301_P"
    folder.mkdir()
    columns = FEATURE_SETS["daic_woz"]["pose"].columns
    lines = ["frame, timestamp, confidence, success, " + ", ".join(columns)]
    for frame, (t, success, tx) in enumerate([(0.0, 1, 2.0), (0.5, 0, 100.0), (0.9, 1, 4.0),
                                              (1.2, 0, 7.0)]):  # fmt: skip
        lines.append(f"{frame + 1}, {t}, 0.9, {success}, {tx}, 0, 0, 0, 0, 0")
    (folder / "301_CLNF_pose.txt").write_text("\n".join(lines) + "\n")
    session = Session("301", folder)
    fs = FEATURE_SETS["daic_woz"]["pose"]
    out = fs.seconds(session, session.read(fs.file_names("301")))
    np.testing.assert_allclose(out[:, 0], [3.0, 0.0])  # (2 + 4) / 2; second 1 has no face


# ------------------------------------------------------------- the twins, read
@pytest.mark.parametrize("corpus", ["daic_woz", "edaic"])
def test_each_twin_reads_alike_from_archives_and_folders(corpus, twin, tmp_path):
    roots = []
    for files in ("archives", "folders"):
        release, spec = twin(corpus, files)
        roots.append(prepare(release, options(corpus), tmp_path / files, workers=1))
    plan = {s.id: s for s in plan_sessions(spec)}
    records = [read_prepared_index(root) for root in roots]
    assert [r.id for r in records[0]] == [r.id for r in records[1]]
    assert {r.id for r in records[0]} == set(plan)
    audio, visual = DEFAULT_SETS[corpus]
    widths = (len(set_columns(parse_sets(corpus, "audio", audio))),
              len(set_columns(parse_sets(corpus, "visual", visual))))  # fmt: skip
    for first, second in zip(*records, strict=True):
        session = plan[first.id]
        assert first.fold == {"train": "train", "dev": "valid", "test": "test"}[session.fold]
        if first.score != 10 or first.label != 0:  # the twin's mislabelled session aside
            assert (first.score, first.label) == (session.score, session.binary)
        a, v = np.load(first.audio_path), np.load(first.video_path)
        assert a.shape == (session.seconds, widths[0])  # one step per second of audio
        assert v.shape == (session.seconds, widths[1])
        np.testing.assert_array_equal(a, np.load(second.audio_path))
        np.testing.assert_array_equal(v, np.load(second.video_path))
    genders = {r.gender for r in records[0]}
    assert genders <= ({"0", "1"} if corpus == "daic_woz" else {"m", "f"})


def test_widths_follow_the_chosen_sets_in_their_order(twin, tmp_path):
    release, _ = twin("daic_woz")
    chosen = InterviewOptions("daic_woz", ("formant",), ("pose", "gaze"))
    root = prepare(release, chosen, tmp_path, workers=1)
    record = read_prepared_index(root)[0]
    assert np.load(record.audio_path).shape[1] == 5
    assert np.load(record.video_path).shape[1] == 6 + 12
    full = prepare(release, options("daic_woz"), tmp_path, workers=1)
    both = np.load(full / "visual" / f"{record.id}.npy")
    np.testing.assert_array_equal(
        np.load(record.video_path)[:, :6], both[:, 32:38]
    )  # aus 20, gaze 12, then pose


def test_participant_only_keeps_the_seconds_of_participant_turns(twin, tmp_path):
    release, _ = twin("daic_woz", "folders")
    whole = prepare(release, options("daic_woz"), tmp_path, workers=1)
    turns = prepare(release, options("daic_woz", participant_only=True), tmp_path, workers=1)
    assert turns != whole
    for record in read_prepared_index(turns):
        kept, all_ = np.load(record.audio_path), np.load(whole / "audio" / f"{record.id}.npy")
        assert 0 < len(kept) < len(all_)
        # every kept second is a second of the whole session, in order
        rows = [int(np.flatnonzero((all_ == row).all(1))[0]) for row in kept]
        assert rows == sorted(rows)


def test_the_cache_is_read_back_and_a_changed_release_prepares_anew(twin, tmp_path, monkeypatch):
    release = copy_release(twin("edaic", "folders")[0], tmp_path)
    first = prepare(release, options("edaic"), tmp_path / "cache", workers=1)
    from dynmultidep.data.interviews import prepare as module

    def refuse(*args):
        raise AssertionError("a cached corpus was prepared again")

    monkeypatch.setattr(module, "_prepare_session", refuse)
    assert prepare(release, options("edaic"), tmp_path / "cache", workers=1) == first
    split = release / "labels" / "train_split.csv"
    split.write_text(split.read_text().replace(",0,20", ",0,21"))
    with pytest.raises(AssertionError, match="prepared again"):
        prepare(release, options("edaic"), tmp_path / "cache", workers=1)


def test_sessions_without_split_files_are_prepared_for_prediction(twin, tmp_path):
    release, spec = twin("edaic")
    labelled = prepare(release, options("edaic"), tmp_path / "labelled", workers=1)
    sessions = tmp_path / "sessions"  # a folder of archives, no split file
    sessions.mkdir()
    for archive in release.glob("*_P.tar.gz"):
        shutil.copy(archive, sessions)
    root = prepare_unlabelled(sessions, options("edaic"), tmp_path / "cache", workers=1)
    assert not (root / "labels.csv").exists()
    ids = sorted(p.stem for p in (root / "audio").glob("*.npy"))
    assert ids == sorted(s.id for s in plan_sessions(spec))
    for record in read_prepared_index(labelled):
        np.testing.assert_array_equal(np.load(root / "visual" / f"{record.id}.npy"),
                                      np.load(record.video_path))  # fmt: skip
    one = prepare_unlabelled(sessions / f"{ids[0]}_P.tar.gz", options("edaic"), tmp_path / "cache",
                             workers=1)  # fmt: skip
    assert [p.stem for p in (one / "audio").glob("*.npy")] == [ids[0]]
    with pytest.raises(DataError, match=r"empty: no edaic session \({id}_P archive or folder\)"):
        (tmp_path / "empty").mkdir()
        prepare_unlabelled(tmp_path / "empty", options("edaic"), tmp_path / "cache", workers=1)


def test_the_cache_key_of_unlabelled_sessions_reads_no_file(twin, tmp_path, monkeypatch):
    release, _ = twin("daic_woz")
    (archive, *_) = sorted(release.glob("*_P.zip"))
    with zipfile.ZipFile(archive) as packed:
        packed.extractall(tmp_path / "session")  # one unpacked session: its CSVs at the top
    before = prepared_root(tmp_path / "session", options("daic_woz"), tmp_path, labelled=False)

    def refuse(path):
        raise AssertionError(f"{path} read for the cache key")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    after = prepared_root(tmp_path / "session", options("daic_woz"), tmp_path, labelled=False)
    assert after == before


def test_two_workers_give_the_same_arrays_as_one(twin, tmp_path):
    release, _ = twin("daic_woz")
    one = prepare(release, options("daic_woz"), tmp_path / "one", workers=1)
    two = prepare(release, options("daic_woz"), tmp_path / "two", workers=2)
    for record in read_prepared_index(one):
        np.testing.assert_array_equal(np.load(record.audio_path),
                                      np.load(two / "audio" / f"{record.id}.npy"))  # fmt: skip


# ------------------------------------------------------------- quirks, reported
def test_quirks_are_reported_and_warned(twin, tmp_path, caplog):
    release, spec = twin("daic_woz")
    with caplog.at_level(logging.WARNING):
        root = prepare(release, options("daic_woz"), tmp_path, workers=1)
    report = read_report(root)
    found = " ".join(line for lines in report["sessions"].values() for line in lines)
    assert "ends" in found and "before the audio" in found  # the video that ends early
    assert "disagrees with score 10" in found  # the mislabelled binary
    assert "binary 0 disagrees" in caplog.text and "before the audio" in caplog.text
    mislabelled = next(r for r in read_prepared_index(root) if r.score == 10 and r.label == 0)
    assert "disagrees" in " ".join(report["sessions"][mislabelled.id])


def test_participant_only_reports_a_transcript_without_interviewer_lines(twin, tmp_path):
    release, _ = twin("daic_woz")
    root = prepare(release, options("daic_woz", participant_only=True), tmp_path, workers=1)
    found = [s for s, lines in read_report(root)["sessions"].items()
             if "the transcript has no interviewer lines" in lines]  # fmt: skip
    assert len(found) == 1


def test_without_test_labels_dev_is_reported_and_train_gives_the_validation_fold(twin, tmp_path):
    release = copy_release(twin("daic_woz")[0], tmp_path)
    (release / "full_test_split.csv").unlink()
    root = prepare(release, options("daic_woz"), tmp_path / "cache", workers=1)
    records = read_prepared_index(root)
    dev = {label.id for label in read_splits("daic_woz", release) if label.fold == "valid"}
    assert {r.id for r in records if r.fold == "test"} == dev
    assert any(r.fold == "valid" for r in records)
    assert "dev is reported as the test fold" in read_report(root)["notes"][0]


def test_edaic_gender_words_are_read_through_their_padding(twin):
    release, _ = twin("edaic")
    genders = {label.gender for label in read_splits("edaic", release)}
    assert genders == {"m", "f"}
    text = (release / "labels" / "train_split.csv").read_text()
    assert " male " in text or " female " in text  # the twin pads some, as released


# ------------------------------------------------------------- bad input
def test_a_participant_without_a_session_is_named(twin, tmp_path):
    release = copy_release(twin("daic_woz")[0], tmp_path)
    split = release / "train_split_Depression_AVEC2017.csv"
    split.write_text(split.read_text() + "999,1,15,0,2,2,2,2,2,2,2,1\n")
    with pytest.raises(DataError, match=r"train_split_Depression_AVEC2017.csv: line \d+: "
                       "participant 999 has no session"):  # fmt: skip
        prepare(release, options("daic_woz"), tmp_path / "cache", workers=1)


def test_a_missing_feature_file_is_named(twin, tmp_path):
    release = copy_release(twin("daic_woz", "folders")[0], tmp_path)
    victim = sorted(release.glob("*_P"))[0]
    (victim / f"{victim.name[:-2]}_CLNF_pose.txt").unlink()
    with pytest.raises(DataError, match=rf"{victim.name[:-2]}_CLNF_pose.txt: missing: session "
                       rf"{victim.name[:-2]} has no pose file"):  # fmt: skip
        prepare(release, options("daic_woz"), tmp_path / "cache", workers=1)


def test_a_truncated_file_in_an_archive_is_named(twin, tmp_path):
    release = copy_release(twin("daic_woz")[0], tmp_path)
    archive = sorted(release.glob("*_P.zip"))[0]
    sid = archive.name[:-6]
    with zipfile.ZipFile(archive) as z:
        members = {name: z.read(name) for name in z.namelist()}
    name = f"{sid}_FORMANT.csv"
    members[name] = members[name][: len(members[name]) - 7]  # cut inside the last line
    with zipfile.ZipFile(archive, "w") as z:
        for member, data in members.items():
            z.writestr(member, data)
    with pytest.raises(DataError, match=rf"{archive.name}/{name}: line \d+: \d+ fields, "
                       r"expected 5 \(truncated\?\)"):  # fmt: skip
        prepare(release, options("daic_woz"), tmp_path / "cache", workers=1)


def test_the_wrong_separator_is_named(tmp_path):
    data = b"frame;timestamp;confidence;success;Tx\n1;0.0;0.9;1;2.0\n"
    with pytest.raises(DataError, match=r"x.txt: line 1 has no ',' separator: wrong separator"):
        parse_table(data, tmp_path / "x.txt", ",", header=True)


def test_a_field_that_is_not_a_number_is_named(tmp_path):
    with pytest.raises(DataError, match=r"x.csv: line 3: a field that is not a number"):
        parse_table(b"1,2\n3,4\n5,oops\n", tmp_path / "x.csv", ",", header=False)


def test_an_unreadable_archive_is_named(twin, tmp_path):
    release = copy_release(twin("edaic")[0], tmp_path)
    archive = sorted(release.glob("*_P.tar.gz"))[0]
    archive.write_bytes(archive.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"{archive.name}: not a readable session archive"):
        prepare(release, options("edaic"), tmp_path / "cache", workers=1)


def test_a_missing_split_file_and_bad_values_are_named(twin, tmp_path):
    release = copy_release(twin("daic_woz")[0], tmp_path)
    split = release / "dev_split_Depression_AVEC2017.csv"
    lines = split.read_text().splitlines()
    cells = lines[1].split(",")
    split.write_text("\n".join([lines[0], ",".join([cells[0], "1", "31", *cells[3:]])]) + "\n")
    with pytest.raises(DataError, match=r"dev_split_Depression_AVEC2017.csv: line 2: PHQ8_Score "
                       "31 is outside the PHQ-8 range"):  # fmt: skip
        read_splits("daic_woz", release)
    (release / "train_split_Depression_AVEC2017.csv").unlink()
    with pytest.raises(
        DataError, match="train_split_Depression_AVEC2017.csv: split file not found"
    ):
        read_splits("daic_woz", release)


def test_options_refuse_unknown_sets_and_participant_only_on_edaic():
    with pytest.raises(ValueError, match="daic_woz audio feature sets must be distinct names "
                       "among covarep, formant; got egemaps"):  # fmt: skip
        InterviewOptions("daic_woz", ("egemaps",), ("aus",))
    with pytest.raises(ValueError, match="participant_only needs speaker turns"):
        InterviewOptions("edaic", ("egemaps",), ("aus",), participant_only=True)


# ------------------------------------------------------------- through the configs
def interview_overrides(corpus: str, tmp_path: Path, *extra: str) -> list[str]:
    return [f"dataset=synthetic_{corpus}", "dataset.synthetic.preset=tiny",
            f"paths.data_dir={tmp_path}", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("corpus", "extra", "widths"),
    [
        ("daic_woz", (), (74, 38)),
        (
            "daic_woz",
            ("dataset.interview.audio=[covarep,formant]", "dataset.interview.visual=[landmarks]"),
            (79, 136),
        ),  # fmt: skip
        (
            "edaic",
            ("dataset.interview.audio=[mfcc]", "dataset.interview.visual=[aus]"),
            (39, 35),
        ),  # fmt: skip
    ],
)
def test_configs_carry_the_chosen_widths_to_the_model_and_batches(corpus, extra, widths,
                                                                  tmp_path):  # fmt: skip
    from hydra.utils import instantiate

    from conftest import compose_config

    cfg = compose_config("train", interview_overrides(corpus, tmp_path, *extra))
    assert (cfg.dataset.audio_dim, cfg.dataset.video_dim) == widths
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape[-1] == widths[0] and batch["video"].shape[-1] == widths[1]
    assert not batch["score"].isnan().any()
    assert ((batch["score"] >= 0) & (batch["score"] <= 24)).all()
    assert datamodule.data_root.parent == tmp_path / "prepared"


def test_daic_woz_gender_codes_select_the_training_folds(tmp_path):
    from hydra.utils import instantiate

    from conftest import compose_config

    cfg = compose_config("train", interview_overrides(
        "daic_woz", tmp_path, "dataset.train_gender=1", "dataset.test_gender=0"))  # fmt: skip
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()
    assert {v.gender for v in datamodule.fold("train")} == {"1"}
    assert {v.gender for v in datamodule.fold("test")} == {"0"}


def test_a_gender_the_corpus_lacks_is_refused_in_one_line(tmp_path):
    from hydra.utils import instantiate

    from conftest import compose_config
    from dynmultidep.tasks.run.session import expected_error

    cfg = compose_config("train", interview_overrides("daic_woz", tmp_path,
                                                      "dataset.train_gender=m"))  # fmt: skip
    with pytest.raises(Exception) as err:
        instantiate(cfg.dataset)
    assert str(expected_error(err.value)) == ("dataset.train_gender='m': daic_woz's genders are "
                                              "0 and 1 (or both)")  # fmt: skip


def test_a_checkpoint_of_other_audio_sets_is_refused(tmp_path):
    from hydra.utils import instantiate

    from conftest import compose_config

    trained = instantiate(
        compose_config("train", interview_overrides("daic_woz", tmp_path)).dataset
    )
    other = instantiate(compose_config("train", interview_overrides(
        "daic_woz", tmp_path, "dataset.interview.audio=[formant]")).dataset)  # fmt: skip
    with pytest.raises(DataError, match=r"trained on 74 audio columns \(covarep\), this corpus "
                       "has audio sets formant"):  # fmt: skip
        other.load_state_dict(trained.state_dict())


@pytest.mark.parametrize("task", ["binary", "regression"])
@pytest.mark.parametrize("corpus", ["daic_woz", "edaic"])
def test_train_runs_end_to_end_on_each_twin(corpus, task, tmp_path):
    import json

    from conftest import QUIET, TINY_MODEL, compose_config
    from dynmultidep.tasks.train import train

    regression = ("module.task=regression", "model.stats_fit=gradient")
    cfg = compose_config("train", interview_overrides(
        corpus, tmp_path, "dataset.batch_size=4", "trainer.max_epochs=2",
        f"paths.output_dir={tmp_path}/run", *TINY_MODEL, *QUIET,
        *(regression if task == "regression" else ())))  # fmt: skip
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    (prepared,) = (tmp_path / "prepared").iterdir()
    tested = [r for r in read_prepared_index(prepared) if r.fold == "test"]
    assert metrics["fold"] == "test"
    assert metrics["vlogs"] == len(tested) and metrics["depressed"] == sum(r.label for r in tested)
    assert 0 <= metrics["metrics"]["acc"] <= 1
    if task == "regression":
        assert metrics["objective"] == "regression" and metrics["monitor"] == "val/rmse"
        assert 0 <= metrics["metrics"]["rmse"] <= 24 and "train_mean" in metrics["baselines"]


@pytest.mark.parametrize("corpus", ["daic_woz", "edaic"])
def test_a_twin_is_the_same_written_by_one_process_or_two(corpus, tmp_path):
    spec = InterviewTwinSpec(corpus=corpus, preset="tiny", n=6, files="folders")
    write_twin(spec, tmp_path / "one", workers=1)
    write_twin(spec, tmp_path / "two", workers=2)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*")
                   if p.is_file())  # fmt: skip
    assert len(files) >= 6 * 5
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
