"""LMVD preparation: frame selection, column order, row standardisation, ids, splits."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dynmultidep.data import DepressionDataModule
from dynmultidep.data.lmvd import read_lmvd_index
from dynmultidep.data.lmvd_prepare import prepare_lmvd
from dynmultidep.data.openface import read_landmarks
from dynmultidep.errors import DataError

# Look-alike columns around the landmarks, and the landmarks out of order, so
# that only a reader picking x_i / y_i by exact name gets them right.
HEADER = (
    ["frame", "face_id", "timestamp", "confidence", "success", "eye_lmk_x_0", "eye_lmk_y_0"]
    + [f"y_{i}" for i in range(68)]
    + [f"x_{i}" for i in range(68)]
    + ["X_0", "Y_0", "AU01_r"]
)


def landmark_value(frame: int, axis: str, i: int) -> float:
    """A distinct, hand-checkable value for every frame, axis and point."""
    return frame * 1000 + (0 if axis == "x" else 500) + i * (1 + frame % 7) + 0.5


def write_openface_csv(path: Path, frames: int, failed: set[int] = frozenset()) -> None:
    lines = [", ".join(HEADER)]
    for frame in range(1, frames + 1):
        ok = frame not in failed
        values = {
            "frame": frame,
            "face_id": 0,
            "timestamp": (frame - 1) / 30,
            "confidence": 0.9 if ok else 0.0,
            "success": int(ok),
            "eye_lmk_x_0": -7.0,
            "eye_lmk_y_0": -8.0,
            "X_0": -9.0,
            "Y_0": -10.0,
            "AU01_r": 1.0,
        }
        for i in range(68):
            values[f"x_{i}"] = landmark_value(frame, "x", i) if ok else 0.0
            values[f"y_{i}"] = landmark_value(frame, "y", i) if ok else 0.0
        lines.append(", ".join(str(values[name]) for name in HEADER))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def by_hand(frame: int) -> list[float]:
    """The expected prepared row, computed with the statistics module."""
    row = [landmark_value(frame, "x", i) for i in range(68)]
    row += [landmark_value(frame, "y", i) for i in range(68)]
    mean = statistics.fmean(row)
    std = statistics.pstdev(row)
    return [(v - mean) / std for v in row]


def write_release(root: Path, labels: dict[str, int], frames: int = 65, steps: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for n, (vlog_id, label) in enumerate(labels.items()):
        (root / "Audio_feature").mkdir(parents=True, exist_ok=True)
        np.save(root / "Audio_feature" / f"{vlog_id}.npy", rng.normal(size=(steps, 128)))
        sub = root / "Video_feature" / ("nested" if n % 2 else "")
        write_openface_csv(sub / f"{vlog_id}.csv", frames)
        (root / "label").mkdir(exist_ok=True)
        (root / "label" / f"{vlog_id}_Depression.csv").write_bytes(f"{label}\r\n".encode())
    return root


def test_frames_columns_and_row_standardisation_match_a_hand_computation(tmp_path):
    path = tmp_path / "v.csv"
    write_openface_csv(path, frames=65, failed={31})
    rows = read_landmarks(path)
    assert rows.shape == (3, 136)  # frames 1, 31 and 61 of 65
    assert rows[0, 0] == landmark_value(1, "x", 0)
    assert rows[0, 68] == landmark_value(1, "y", 0)
    assert rows[2, 135] == landmark_value(61, "y", 67)
    assert (rows[1] == 0).all()  # success == 0

    release = tmp_path / "release"
    write_release(release, {"0602": 1})
    write_openface_csv(release / "Video_feature" / "0602.csv", frames=65, failed={31})
    prepare_lmvd(release, tmp_path / "out", ratios=(1.0, 0.0, 0.0))
    visual = np.load(tmp_path / "out" / "visual" / "0602_visual.npy")
    assert visual.dtype == np.float32
    np.testing.assert_allclose(visual[0], by_hand(1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(visual[2], by_hand(61), rtol=1e-6, atol=1e-6)
    assert (visual[1] == 0).all()  # a no-face row stays zero after standardisation
    audio = np.load(tmp_path / "out" / "audio" / "0602.npy")
    assert audio.dtype == np.float32 and audio.shape == (3, 128)


def test_only_the_first_row_of_a_frame_is_kept(tmp_path):
    path = tmp_path / "v.csv"
    write_openface_csv(path, frames=31)
    lines = path.read_text().splitlines()
    second_face = lines[1].replace("0, 0.0, 0.9", "1, 0.0, 0.9", 1)  # face_id 1, frame 1
    path.write_text(
        "\n".join([lines[0], lines[1], second_face.replace(".5,", ".75,"), *lines[2:]]) + "\n"
    )
    rows = read_landmarks(path)
    assert rows.shape == (2, 136)
    assert rows[0, 0] == landmark_value(1, "x", 0)


def test_ids_keep_leading_zeros_and_nested_csvs_are_found(tmp_path):
    labels = {"001": 0, "0602": 1, "0999": 0, "1117": 1, "1425": 0}
    release = write_release(tmp_path / "release", labels)
    prepare_lmvd(release, tmp_path / "out", seed=3)
    records = read_lmvd_index(tmp_path / "out")
    assert sorted(r.id for r in records) == sorted(labels)
    assert {r.id: r.label for r in records} == labels
    for vlog_id in labels:
        assert (tmp_path / "out" / "audio" / f"{vlog_id}.npy").is_file()
        assert (tmp_path / "out" / "visual" / f"{vlog_id}_visual.npy").is_file()


def test_an_existing_split_file_is_followed(tmp_path):
    labels = {"001": 0, "002": 1, "0602": 1}
    release = write_release(tmp_path / "release", labels)
    split = tmp_path / "split.csv"
    split.write_text("index,label,fold\n0602,1,test\n001,0,train\n002,1,valid\n")
    counts = prepare_lmvd(release, tmp_path / "out", split_file=split)
    assert {r.id: r.fold for r in read_lmvd_index(tmp_path / "out")} == {
        "001": "train",
        "002": "valid",
        "0602": "test",
    }
    assert counts == {"written": 3, "skipped": 0, "train": 1, "valid": 1, "test": 1}


def test_a_split_file_disagreeing_with_the_labels_is_refused(tmp_path):
    release = write_release(tmp_path / "release", {"001": 0, "002": 1})
    split = tmp_path / "split.csv"
    split.write_text("index,label,fold\n001,1,train\n002,1,test\n")
    with pytest.raises(DataError, match="line 2: label '1' for id '001' disagrees"):
        prepare_lmvd(release, tmp_path / "out", split_file=split)


def test_stratified_split_follows_ratios_and_seed(tmp_path):
    labels = {f"{i:03d}": i % 2 for i in range(1, 41)}
    release = write_release(tmp_path / "release", labels, frames=1, steps=1)
    prepare_lmvd(release, tmp_path / "a", seed=5)
    prepare_lmvd(release, tmp_path / "b", seed=5)
    prepare_lmvd(release, tmp_path / "c", seed=6)
    a, b, c = ((tmp_path / x / "labels.csv").read_text() for x in "abc")
    assert a == b != c
    records = read_lmvd_index(tmp_path / "a")
    counts = Counter((r.fold, r.label) for r in records)
    assert counts == {
        ("train", 0): 16,
        ("train", 1): 16,
        ("valid", 0): 2,
        ("valid", 1): 2,
        ("test", 0): 2,
        ("test", 1): 2,
    }


def test_rerun_skips_finished_vlogs_unless_forced(tmp_path):
    release = write_release(tmp_path / "release", {"001": 0, "002": 1})
    out = tmp_path / "out"
    assert prepare_lmvd(release, out)["written"] == 2
    target = out / "visual" / "001_visual.npy"
    np.save(target, np.zeros((1, 136), dtype=np.float32))  # a marker a re-run must keep
    assert prepare_lmvd(release, out)["skipped"] == 2
    assert np.load(target).shape == (1, 136)
    assert prepare_lmvd(release, out, force=True)["written"] == 2
    assert np.load(target).shape == (3, 136)
    assert not list(out.rglob("*.tmp"))


def test_missing_release_pieces_are_named(tmp_path):
    release = write_release(tmp_path / "release", {"001": 0, "002": 1})
    (release / "Video_feature" / "nested" / "002.csv").unlink()
    with pytest.raises(
        DataError, match="002.csv: missing: id '002' has a label file but no OpenFace CSV"
    ):
        prepare_lmvd(release, tmp_path / "out")
    (release / "label" / "001_Depression.csv").write_text("yes\n")
    with pytest.raises(DataError, match="001_Depression.csv: expected a single 0 or 1"):
        prepare_lmvd(release, tmp_path / "out")


def test_a_csv_without_landmark_columns_is_refused(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("frame, face_id, X_0\n1, 0, 3.0\n")
    with pytest.raises(DataError, match="lacks the OpenFace column\\(s\\) x_0, x_1, x_2, x_3, x_4 "
                       "and 131 more$"):  # fmt: skip
        read_landmarks(path)


def test_synthetic_release_prepares_into_a_readable_corpus(synthetic_corpus, tmp_path):
    release, plan = synthetic_corpus("lmvd-release", "tiny", n=12)
    counts = prepare_lmvd(release, tmp_path / "out", split_file=release / "split.csv", workers=2)
    assert counts["written"] == len(plan) == 12
    dm = DepressionDataModule(corpus="lmvd", root=tmp_path / "out")
    dm.setup()
    loaded = {v.id: v for name in ("train", "valid", "test") for v in dm.fold(name)}
    assert set(loaded) == {v.id for v in plan}
    for vlog in plan:
        assert loaded[vlog.id].length == vlog.length
        assert loaded[vlog.id].label == vlog.label
