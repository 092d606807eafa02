"""Feature extraction from video files: the arrays, the corpus folder, bad input.

Videos are built in the tests (tests/videos.py): scikit-image's astronaut
photograph moved and scaled across the frames, blank seconds, and a generated
voice, encoded with PyAV.
"""

from __future__ import annotations

import json
import shutil
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from dynmultidep.data import get_corpus
from dynmultidep.data.dvlog import read_dvlog_index
from dynmultidep.errors import DataError
from dynmultidep.features import media
from dynmultidep.features.acoustic import DESCRIPTORS
from dynmultidep.features.corpus import extract_corpus
from dynmultidep.features.pipeline import ExtractionSettings, Extractor
from dynmultidep.features.sources import find_videos, read_labels
from dynmultidep.features.synthetic_video import (
    PATCH_COLS,
    PATCH_ROWS,
    SAMPLE_RATE,
    VlogSpec,
    voice,
    write_video,
)
from dynmultidep.features.visual import COLUMNS

pytest.importorskip("opensmile")  # the `extract` extra; `make test` installs it

SPEC = VlogSpec(seconds=5.6, blank=(2,))
FACE_CENTRE = (222.5 - PATCH_COLS[0], 126.5 - PATCH_ROWS[0])  # in the unscaled patch


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        "a": write_video(folder / "a.mkv", SPEC),
        "b": write_video(folder / "b.mkv", VlogSpec(seconds=4.2, blank=(0, 3), pitch=200, seed=1)),
        "c": write_video(folder / "c.mkv", VlogSpec(seconds=3.0, blank=(), shift=-5, seed=2)),
    }


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(ExtractionSettings())


@pytest.fixture(scope="module")
def features(extractor, videos):
    return extractor(videos["a"])


def test_one_row_per_whole_second_in_the_release_layout(features):
    assert features.audio.shape == (5, len(DESCRIPTORS)) == (5, 25)
    assert features.visual.shape == (5, len(COLUMNS)) == (5, 136)
    assert features.audio.dtype == features.visual.dtype == np.float64
    assert COLUMNS[:2] == ("x0", "x1") and COLUMNS[68] == "y0" and COLUMNS[-1] == "y67"
    assert DESCRIPTORS[0] == "Loudness_sma3" and DESCRIPTORS[-1] == "F3amplitudeLogRelF0_sma3nz"
    assert features.duration == pytest.approx(5.6)


def test_zero_rows_exactly_on_the_blank_seconds(features):
    blank = ~np.any(features.visual != 0, axis=1)
    assert blank.tolist() == [s in SPEC.blank for s in range(5)]
    assert features.face_found.tolist() == (~blank).tolist()


def test_landmarks_lie_in_the_face_and_follow_it(features):
    for second in (0, 1, 3, 4):
        left, top, right, bottom = SPEC.box(second)
        x, y = features.visual[second, :68], features.visual[second, 68:]
        assert (x >= left).all() and (x < right).all() and (y >= top).all() and (y < bottom).all()
        scale = 1.4 * (1 + SPEC.growth) ** second
        size = scale * 87  # the face's width in the frame
        assert abs(x.mean() - (left + scale * FACE_CENTRE[0])) < 0.1 * size
        assert abs(y.mean() - (top + scale * FACE_CENTRE[1])) < 0.1 * size
    # the face grew by (1 + growth)^4 from second 0 to 4: so does the landmarks' spread
    spread = [np.ptp(features.visual[s, :68]) for s in (0, 4)]
    assert spread[1] / spread[0] == pytest.approx((1 + SPEC.growth) ** 4, rel=0.06)


@pytest.mark.parametrize("unvoiced", ["exclude", "include"])
def test_egemaps_rows_are_opensmile_frames_averaged_per_second(videos, unvoiced):
    """opensmile on the generated samples themselves, averaged in the test."""
    import opensmile

    extractor = Extractor(ExtractionSettings(unvoiced=unvoiced))
    got = extractor(videos["a"]).audio
    samples = voice(SPEC).astype(np.float32) / 32768
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
    )
    table = smile.process_signal(samples, SAMPLE_RATE)
    assert list(table.columns) == list(DESCRIPTORS)
    starts = table.index.get_level_values("start").total_seconds().to_numpy()
    for second in range(5):
        rows = table.to_numpy(np.float64)[(starts >= second) & (starts < second + 1)]
        assert len(rows) == 100  # 10 ms hop
        for j, name in enumerate(DESCRIPTORS):
            values = rows[:, j]
            if unvoiced == "exclude" and name.endswith("_sma3nz"):
                values = values[values != 0]
            want = values.mean() if len(values) else 0.0
            assert got[second, j] == pytest.approx(want, rel=1e-9, abs=1e-12), (second, name)
    # the voice is voiced half of every second: F0 averaged over voiced frames only is a
    # pitch (about 140 Hz = 28 semitones above 27.5 Hz); over all frames about half that
    f0 = got[:, DESCRIPTORS.index("F0semitoneFrom27.5Hz_sma3nz")]
    expected = 12 * np.log2(140 / 27.5)
    if unvoiced == "exclude":
        assert np.abs(f0 - expected).max() < 1.5
    else:
        assert (f0 < 0.75 * expected).all() and (f0 > 0.3 * expected).all()


def test_media_reads_the_exact_samples_and_the_frame_on_screen(videos):
    samples = media.read_audio(videos["a"])
    np.testing.assert_array_equal(samples * 32768, voice(SPEC)[: len(samples)])
    frames = list(media.video_frames(videos["a"]))
    assert [k for k, _ in frames] == list(range(6))  # 5.6 s of frames: seconds 0..5 start
    assert frames[2][1].max() <= 61  # the blank second: background only


@pytest.mark.parametrize(
    ("name", "spec", "steps", "duration"),
    [
        ("audio longer", VlogSpec(seconds=3.5, audio_seconds=5.0), 3, 3.5),
        ("audio shorter", VlogSpec(seconds=5.0, audio_seconds=3.5), 3, 3.5),
        ("video just short", VlogSpec(seconds=4.9, audio_seconds=5.05), 4, 4.9),
    ],
)
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_rows_are_the_whole_seconds_of_the_shorter_stream(
    extractor, tmp_path, name, spec, steps, duration, suffix
):
    codec = "aac" if suffix == ".mp4" else "pcm_s16le"
    features = extractor(write_video(tmp_path / f"v{suffix}", spec, audio_codec=codec))
    assert features.audio.shape[0] == features.visual.shape[0] == steps, name
    assert features.duration == pytest.approx(duration, abs=0.03), name


def test_a_late_stream_keeps_its_offset(extractor, tmp_path):
    """Audio that starts 0.5 s after the video is preceded by 0.5 s of silence."""
    spec = VlogSpec(seconds=4.0, audio_seconds=3.0, audio_start=0.5, blank=())
    path = write_video(tmp_path / "late.mkv", spec)
    info = media.probe(path)
    assert info.origin == pytest.approx(0.0)
    samples = media.read_audio(path, info.origin)
    assert (samples[:8000] == 0).all()
    np.testing.assert_array_equal(samples[8000:] * 32768, voice(spec)[: len(samples) - 8000])
    features = extractor(path)
    assert features.visual.shape[0] == 3 and features.duration == pytest.approx(3.5)
    loudness = features.audio[:, DESCRIPTORS.index("Loudness_sma3")]
    assert loudness[0] < loudness[1]  # the first second is half silence


# ------------------------------------------------------------- the corpus folder
def extract(out: Path, paths, **kwargs):
    return extract_corpus(list(paths), out, **kwargs)


def test_corpus_in_dvlog_layout_with_labels(tmp_path, videos):
    labels_file = tmp_path / "labels_in.csv"
    labels_file.write_text("id,label,gender,fold\na,depression,f,train\nb,0,m,test\nc,1,,valid\n")
    out = tmp_path / "corpus"
    report = extract(out, videos.values(), labels=read_labels(labels_file))
    assert [o.status for o in report.outcomes] == ["extracted"] * 3
    records = {r.id: r for r in read_dvlog_index(out)}
    assert set(records) == {"a", "b", "c"}
    assert (records["a"].label, records["a"].gender, records["a"].fold) == (1, "f", "train")
    assert (records["b"].label, records["b"].gender, records["b"].fold) == (0, "m", "test")
    assert records["c"].gender is None
    for record in records.values():
        audio, visual = np.load(record.audio_path), np.load(record.video_path)
        assert audio.shape[0] == visual.shape[0] and audio.dtype == np.float64
    header = (out / "labels.csv").read_text().splitlines()[0]
    assert header == "index,label,duration,gender,fold"
    assert (out / "labels.csv").read_text().splitlines()[1] == "a,depression,5.60,f,train"
    record = json.loads((out / "features.json").read_text())
    assert record["extraction"]["settings"] == ExtractionSettings().as_dict()
    assert {"opensmile", "av", "dlib-bin"} <= set(record["extraction"]["versions"])
    predictor = record["extraction"]["models"]["shape_predictor"]
    assert predictor.startswith("shape_predictor_68_face_landmarks.dat (")
    assert record["visual"]["columns"] == list(COLUMNS)
    assert record["audio"]["columns"] == list(DESCRIPTORS)
    # a model trained on it carries the settings in its checkpoint (predict re-applies them)
    from dynmultidep.data import DepressionDataModule

    state = DepressionDataModule(corpus="dvlog", root=out).state_dict()
    assert state["extraction"] == ExtractionSettings().as_dict()
    assert state["visual_columns"] == list(COLUMNS)


def test_unlabelled_corpus_is_one_predict_accepts(tmp_path, videos):
    out = tmp_path / "corpus"
    extract(out, [videos["c"]])
    assert not (out / "labels.csv").exists()
    records = get_corpus("dvlog").unlabelled_records(out)
    assert [r.id for r in records] == ["c"]


def test_labels_without_folds_get_a_stratified_split(tmp_path):
    path = tmp_path / "labels.csv"
    rows = [f"{i:03d},{'depression' if i % 2 else 'normal'}" for i in range(20)]
    path.write_text("id,label\n" + "\n".join(rows) + "\n")
    labels = read_labels(path, (0.7, 0.1, 0.2), seed=3)
    assert set(labels) == {f"{i:03d}" for i in range(20)}  # ids stay strings, zeros kept
    folds = [v.fold for v in labels.values()]
    assert folds.count("train") == 14 and folds.count("valid") == 2 and folds.count("test") == 4
    assert labels == read_labels(path, (0.7, 0.1, 0.2), seed=3)


def test_features_do_not_depend_on_workers_or_companions(tmp_path, videos):
    alone = tmp_path / "alone"
    together = tmp_path / "together"
    for vlog_id, path in videos.items():
        extract(alone / vlog_id, [path], workers=1)
    report = extract(together, videos.values(), workers=2)
    assert sorted(o.id for o in report.of("extracted")) == ["a", "b", "c"]
    for vlog_id in videos:
        for name in (f"{vlog_id}_acoustic.npy", f"{vlog_id}_visual.npy"):
            one = (alone / vlog_id / vlog_id / name).read_bytes()
            assert one == (together / vlog_id / name).read_bytes(), name


def test_rerun_skips_finished_vlogs_unless_forced(tmp_path, videos):
    out = tmp_path / "corpus"
    extract(out, [videos["a"], videos["c"]])
    stamp = (out / "a" / "a_visual.npy").stat().st_mtime_ns
    again = extract(out, [videos["a"], videos["b"], videos["c"]])
    assert {o.id: o.status for o in again.outcomes} == {
        "a": "skipped", "c": "skipped", "b": "extracted"
    }  # fmt: skip
    assert (out / "a" / "a_visual.npy").stat().st_mtime_ns == stamp
    forced = extract(out, [videos["a"]], force=True)
    assert [o.status for o in forced.outcomes] == ["extracted"]
    lines = (out / "extracted.csv").read_text().splitlines()
    assert lines[0] == "id,source,bytes,modified_ns,duration,steps,face_found"
    assert len(lines) == 4
    # another file under the same name (same id) is extracted again, not served stale
    other = tmp_path / "other" / "a.mkv"
    other.parent.mkdir()
    shutil.copy(videos["b"], other)
    (redone,) = extract(out, [other]).outcomes
    assert redone.status == "extracted"
    np.testing.assert_array_equal(
        np.load(out / "a" / "a_visual.npy"), np.load(out / "b" / "b_visual.npy")
    )


def test_labels_cover_every_vlog_the_folder_holds(tmp_path, videos):
    labels_file = tmp_path / "labels_in.csv"
    labels_file.write_text("id,label,fold\na,1,train\nb,0,valid\nc,1,test\n")
    labels = read_labels(labels_file)
    out = tmp_path / "corpus"
    extract(out, [videos["a"], videos["b"]], labels=labels)
    extract(out, [videos["c"]], labels=labels)  # a later run with other videos
    assert [r.id for r in read_dvlog_index(out)] == ["a", "b", "c"]
    # a vlog that fails on a forced re-run leaves the labels too (here: its file is gone)
    (tmp_path / "gone").mkdir()
    gone = shutil.copy(videos["b"], tmp_path / "gone" / "b.mkv")
    extract(out, [Path(gone)], force=True)
    Path(gone).write_bytes(b"")
    report = extract(out, [Path(gone)], force=True)
    assert [o.status for o in report.outcomes] == ["failed"]
    assert [r.id for r in read_dvlog_index(out)] == ["a", "c"]
    assert sorted(read_index_ids(out)) == ["a", "c"]


def read_index_ids(out: Path) -> list[str]:
    return [line.split(",", 1)[0] for line in (out / "extracted.csv").read_text().splitlines()[1:]]


def test_a_corpus_written_with_other_settings_is_refused(tmp_path, videos):
    out = tmp_path / "corpus"
    extract(out, [videos["c"]])
    with pytest.raises(DataError, match=r"features\.json: this corpus was extracted with "
                                        r"unvoiced='exclude' \(now 'include'\)"):  # fmt: skip
        extract(out, [videos["c"]], settings=ExtractionSettings(unvoiced="include"))
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="holds no extracted corpus"):
        extract(stray, [videos["c"]])


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, videos) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected message)."""
    folder = tmp_path_factory.mktemp("bad")
    text = folder / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    whole = videos["a"].read_bytes()
    truncated = folder / "truncated.mkv"
    truncated.write_bytes(whole[: len(whole) // 2])
    # the middle third zeroed: the demuxer loses its way or the decoder fails (either
    # way the file is called corrupt, whatever the encoder happened to write there)
    third = len(whole) // 3
    corrupt = folder / "corrupt.mkv"
    corrupt.write_bytes(whole[:third] + bytes(third) + whole[2 * third :])
    return {
        "not a video": (text, "not a video file FFmpeg can read"),
        "zero length": (empty, "empty file"),
        "no audio": (write_video(folder / "mute.mkv", VlogSpec(seconds=2, audio=False)),
                     "has no audio stream"),
        "no video": (write_video(folder / "voice.mkv", VlogSpec(seconds=2, video=False)),
                     "has no video stream"),
        "too short": (write_video(folder / "short.mkv", VlogSpec(seconds=0.5)),
                      "shorter than one step"),
        "truncated": (truncated, "truncated or corrupt: "),
        "corrupt": (corrupt, "corrupt"),
    }  # fmt: skip


def test_each_bad_input_fails_alone_with_its_message(tmp_path, videos, bad_inputs):
    out = tmp_path / "corpus"
    report = extract(out, [videos["c"], *(path for path, _ in bad_inputs.values())])
    failed = {o.id: o.message for o in report.of("failed")}
    assert [o.id for o in report.of("extracted")] == ["c"]
    for name, (path, message) in bad_inputs.items():
        text = failed[path.stem]
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, name
    # nothing half-written: only the good vlog, no temporary files
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert left == ["c", "c/c_acoustic.npy", "c/c_visual.npy", "extracted.csv", "features.json"]


def test_an_unwritable_output_names_the_file(tmp_path, videos):
    out = tmp_path / "corpus"
    extract(out, [videos["c"]])
    (out / "b").write_text("a file where the vlog's folder should be")
    report = extract(out, [videos["b"], videos["c"]])
    (failure,) = report.of("failed")
    assert (
        failure.message.startswith(str(out / "b" / "b_acoustic.npy"))
        and "cannot write" in failure.message
    )
    assert [o.status for o in report.outcomes if o.id == "c"] == ["skipped"]


def test_script_summarises_failures_and_exits_1(tmp_path, videos, bad_inputs, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    import extract_features

    out = tmp_path / "corpus"
    bad = bad_inputs["no audio"][0]
    code = extract_features.main(
        ["--videos", str(videos["c"]), str(bad), "--out", str(out), "--quiet", "--workers", "1"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "1 video failed:" in err and f"{bad}: has no audio stream" in err
    ok = extract_features.main(["--videos", str(videos["c"]), "--out", str(out), "--quiet"])
    assert ok == 0 and "0 extracted, 1 already done, 0 failed" in capsys.readouterr().out


def test_video_folders_are_searched_and_ids_must_be_unique(tmp_path, videos):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(videos["a"], folder / "a.mkv")
    shutil.copy(videos["b"], folder / "sub" / "b.MKV")
    (folder / "readme.txt").write_text("not a video")
    assert [p.name for p in find_videos([folder])] == ["a.mkv", "b.MKV"]
    shutil.copy(videos["a"], folder / "sub" / "a.mp4")
    with pytest.raises(DataError, match="a second video with id 'a'"):
        find_videos([folder])
    with pytest.raises(DataError, match="not found"):
        find_videos([tmp_path / "nothing.mp4"])


def test_vggish_audio_writes_lmvd_prepared_layout(tmp_path, videos):
    """Random VGGish weights (no real ones are shipped): LMVD's layout and row counts."""
    import torch

    from dynmultidep.data.lmvd import read_lmvd_index
    from dynmultidep.features.mel import num_examples
    from dynmultidep.features.vggish import VGGish

    torch.manual_seed(0)
    weights = tmp_path / "vggish.pth"
    torch.save(VGGish().state_dict(), weights)
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text("id,label,fold\na,1,train\nb,0,test\n")
    out = tmp_path / "lmvd"
    settings = ExtractionSettings(audio="vggish")
    with pytest.raises(DataError, match="VGGish features need the network's weights"):
        extract(out, [videos["a"]], settings=settings)
    report = extract(
        out, [videos["a"], videos["b"]], settings=settings, labels=read_labels(labels_file),
        vggish_checkpoint=weights,
    )  # fmt: skip
    assert [o.status for o in report.outcomes] == ["extracted", "extracted"]
    records = {r.id: r for r in read_lmvd_index(out)}
    assert (records["a"].label, records["a"].fold, records["b"].label) == (1, "train", 0)
    audio, visual = np.load(records["a"].audio_path), np.load(records["a"].video_path)
    assert audio.shape == (num_examples(round(5.6 * SAMPLE_RATE)), 128) == (5, 128)
    assert audio.dtype == visual.dtype == np.float32 and visual.shape == (5, 136)
    # each row standardised across its 136 values, no-face rows zero (LMVD's preparation)
    faces = np.any(visual != 0, axis=1)
    assert faces.tolist() == [s not in SPEC.blank for s in range(5)]
    np.testing.assert_allclose(visual[faces].mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(visual[faces].std(1), 1, atol=1e-4)
    record = json.loads((out / "features.json").read_text())
    assert record["visual"]["columns"][:2] == ["x_0", "x_1"]
    assert record["extraction"]["layout"] == "lmvd"


def crashing_worker(job):
    """A worker whose process dies on the vlog named 'crash' (as a native crash would)."""
    import os

    from dynmultidep.features.workers import worker_job

    if job.id == "crash":
        os._exit(3)
    return worker_job(job)


def test_a_worker_crash_fails_only_its_video(tmp_path, videos):
    from dynmultidep.features.corpus import Progress
    from dynmultidep.features.jobs import VideoJob
    from dynmultidep.features.workers import run_parallel

    crash = shutil.copy(videos["c"], tmp_path / "crash.mkv")
    out = tmp_path / "corpus"
    jobs = [VideoJob(p.stem, p, out, "dvlog") for p in (videos["a"], Path(crash), videos["c"])]
    arguments = {"settings": ExtractionSettings(), "predictor": None,
                 "vggish_checkpoint": None, "vggish_pca": None}  # fmt: skip
    ended = []
    outcomes = run_parallel(jobs, arguments, 2, Progress(end_video=ended.append), crashing_worker)
    status = {o.id: (o.status, o.message) for o in outcomes}
    assert status["a"][0] == status["c"][0] == "extracted"
    assert status["crash"] == ("failed", f"{crash}: its worker process died while extracting it")
    assert sorted(o.id for o in ended) == ["a", "c", "crash"]  # one end per video
    assert not (out / "crash").exists()


def test_the_frame_on_screen_at_each_second_with_a_variable_frame_rate(tmp_path):
    """Frames at irregular times: step k takes the last frame shown at or before k s."""
    import av

    times = [0.0, 0.3, 1.7, 2.2, 3.9]  # seconds; the last frame is shown for 0.1 s
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            image = np.full((48, 64, 3), 20 + 40 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    frames = media.video_frames(path)
    shown = [
        int(np.argmin([abs(gray.mean() - (20 + 40 * i)) for i in range(5)])) for _, gray in frames
    ]
    assert shown == [0, 1, 2, 3]  # seconds 0..3; the video ends at 4.0 s
    assert frames.seconds == pytest.approx(4.0)
