"""Every bad input gives one DataError whose one-line message names the file."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import HandVlog, write_dvlog, write_lmvd
from dynmultidep.data import DepressionDataModule
from dynmultidep.data.arrays import load_features
from dynmultidep.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def load_all(root: Path, **kwargs) -> None:
    DepressionDataModule(root=root, **kwargs).setup()


def replace_line(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def check(err: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message


def test_missing_labels_csv(dvlog_root):
    (dvlog_root / "labels.csv").unlink()
    with pytest.raises(DataError) as err:
        load_all(dvlog_root)
    check(err, dvlog_root / "labels.csv", "file not found", "dataset.root")


def test_listed_id_without_its_files(dvlog_root):
    (dvlog_root / "3" / "3_visual.npy").unlink()
    with pytest.raises(DataError) as err:
        load_all(dvlog_root)
    check(err, dvlog_root / "3" / "3_visual.npy", "missing", "'3'", "labels.csv")


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros(25), ("expected an array of shape (T, 25)", "(25,)")),
        (np.zeros((4, 5, 25)), ("shape (4, 5, 25)",)),
        (np.zeros((4, 24)), ("shape (4, 24)",)),
        (np.zeros((0, 25)), ("no rows",)),
        (np.array([["a"] * 25]), ("dtype", "expected real numbers")),
    ],
)
def test_arrays_of_the_wrong_rank_width_or_type(dvlog_root, array, words):
    path = dvlog_root / "2" / "2_acoustic.npy"
    np.save(path, array)
    with pytest.raises(DataError) as err:
        load_all(dvlog_root)
    check(err, path, *words)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300])
def test_nan_and_inf_values(dvlog_root, value):
    path = dvlog_root / "4" / "4_visual.npy"
    array = np.load(path)
    array[3, 7] = value  # 1e300 is finite in float64 but overflows float32
    np.save(path, array)
    with pytest.raises(DataError) as err:
        load_all(dvlog_root)
    check(err, path, "1 NaN/Inf values", "first at row 3")


def test_pickled_object_array_is_never_unpickled(dvlog_root):
    path = dvlog_root / "0" / "0_acoustic.npy"
    np.save(path, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError) as err:
        load_all(dvlog_root)
    check(err, path, "pickled", "allow_pickle=False")


def test_plain_pickle_file_behind_an_npy_name(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(pickle.dumps(np.zeros((3, 25))))
    with pytest.raises(DataError) as err:
        load_features(path, 25)
    check(err, path, "pickled")


def test_unreadable_npy(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(DataError) as err:
        load_features(path, 25)
    check(err, path)


def test_npz_archive_behind_an_npy_name(tmp_path):
    path = tmp_path / "x.npy"
    with path.open("wb") as handle:
        np.savez(handle, a=np.zeros((3, 25)))
    with pytest.raises(DataError) as err:
        load_features(path, 25)
    check(err, path, ".npz archive")


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (
            "1,normal,",
            "1,depressed,",
            ("line 3", "unknown label 'depressed'", "depression, normal"),
        ),
        (",valid\n", ",validation\n", ("line 4", "unknown fold 'validation'")),
        (",m,train", ",x,train", ("line 3", "unknown gender 'x'")),
        ("9.25,", "nine,", ("line 3", "duration 'nine' is not a number")),
        (
            "index,label,duration,gender,fold",
            "index,label,duration,fold",
            ("lacks column(s) gender",),
        ),
        (
            "\n1,normal,9.25,m,train",
            "\n0,normal,9.25,m,train",
            ("id '0' is listed more than once",),
        ),
        ("\n1,normal,9.25,m,train", "\n1,normal,9.25", ("line 3", "3 fields, expected 5")),
    ],
)
def test_bad_index_rows(dvlog_root, old, new, words):
    path = dvlog_root / "labels.csv"
    replace_line(path, old, new)
    with pytest.raises(DataError) as err:
        load_all(dvlog_root)
    check(err, path, *words)


def test_empty_gender_selection(tmp_path):
    root = write_dvlog(
        tmp_path,
        [
            HandVlog("0", fold="train", gender="f"),
            HandVlog("1", fold="valid", gender="f"),
            HandVlog("2", fold="test", gender="f"),
        ],
    )
    with pytest.raises(DataError) as err:
        load_all(root, test_gender="m")
    check(err, root / "labels.csv", "no vlogs in fold 'test' for gender 'm'")


def test_empty_fold(tmp_path):
    root = write_dvlog(tmp_path, [HandVlog("0", fold="train"), HandVlog("1", fold="test")])
    with pytest.raises(DataError) as err:
        load_all(root)
    check(err, root / "labels.csv", "no vlogs in fold 'valid'")


def test_lmvd_has_no_gender(tmp_path):
    root = write_lmvd(tmp_path, [HandVlog("001")])
    for key in ("train_gender", "test_gender"):
        with pytest.raises(DataError) as err:
            DepressionDataModule(corpus="lmvd", root=root, **{key: "f"})
        check(err, root / "labels.csv", "lmvd has no gender labels", f"{key}='f'")


def test_lmvd_label_outside_zero_and_one(tmp_path):
    root = write_lmvd(tmp_path, [HandVlog("001"), HandVlog("002", fold="valid")])
    replace_line(root / "labels.csv", "002,1,", "002,2,")
    with pytest.raises(DataError) as err:
        load_all(root, corpus="lmvd")
    check(err, root / "labels.csv", "line 3", "unknown label '2'")


def test_feature_width_in_config_must_match_the_corpus(dvlog_root):
    with pytest.raises(ValueError, match="audio_dim=128 does not match corpus 'dvlog' \\(25\\)"):
        DepressionDataModule(root=dvlog_root, audio_dim=128)


def test_scripts_exit_non_zero_with_a_one_line_error(tmp_path):
    release = tmp_path / "release"
    (release / "Audio_feature").mkdir(parents=True)
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "prepare_lmvd.py"),
            "--release",
            str(release),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {release / 'Video_feature'}: folder not found; expected the LMVD release layout"
    ]
    assert not (tmp_path / "out").exists()
