"""Reading both corpora as released: counts, ids, alignment, no-face rows."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytest

from conftest import HandVlog, write_dvlog, write_lmvd
from dynmultidep.data import DepressionDataModule
from dynmultidep.data.dvlog import read_dvlog_index
from dynmultidep.data.lmvd import read_lmvd_index
from dynmultidep.data.records import normalize_gender, select_records
from dynmultidep.data.vlogs import load_vlogs


def test_dvlog_counts_per_fold_and_gender_match_the_index(synthetic_corpus):
    root, plan = synthetic_corpus("dvlog", "small")
    records = read_dvlog_index(root)
    assert Counter((r.fold, r.label, r.gender) for r in records) == Counter(
        (v.fold, v.label, v.gender) for v in plan
    )
    for fold in ("train", "valid", "test"):
        for gender in ("m", "f"):
            chosen = select_records(records, fold, gender, root / "labels.csv")
            expected = sum(v.fold == fold and v.gender == gender for v in plan)
            assert len(chosen) == expected > 0
            assert {r.gender for r in chosen} == {gender}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("both", None),
        ("all", None),
        (None, None),
        ("m", "m"),
        ("Male", "m"),
        ("f", "f"),
        ("female", "f"),
    ],
)
def test_gender_selection_accepts_aliases(given, expected):
    assert normalize_gender(given) == expected


def test_unknown_gender_selection_is_refused():
    with pytest.raises(ValueError, match="unknown gender selection 'x'"):
        normalize_gender("x")


def test_datamodule_gender_split_sends_test_gender_to_the_test_fold(synthetic_corpus):
    root, plan = synthetic_corpus("dvlog", "small")
    dm = DepressionDataModule(root=root, train_gender="male", test_gender="female")
    dm.setup()
    assert {v.gender for v in dm.fold("train")} == {"m"}
    assert {v.gender for v in dm.fold("valid")} == {"m"}
    assert {v.gender for v in dm.fold("test")} == {"f"}
    assert len(dm.fold("test")) == sum(v.fold == "test" and v.gender == "f" for v in plan)


def test_ids_are_strings_and_keep_leading_zeros(tmp_path):
    ids = ["001", "0602", "1117", "9"]
    folds = ["train", "train", "valid", "test"]
    root = write_lmvd(tmp_path, [HandVlog(i, fold=f) for i, f in zip(ids, folds, strict=True)])
    records = read_lmvd_index(root)
    assert [r.id for r in records] == ids
    assert records[1].audio_path.name == "0602.npy"
    assert records[1].video_path.name == "0602_visual.npy"
    dm = DepressionDataModule(corpus="lmvd", root=root, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert sorted(batch["id"]) == ["001", "0602"]
    assert batch["gender"] == [None, None]


def test_dvlog_ids_are_read_as_strings(dvlog_root):
    records = read_dvlog_index(dvlog_root)
    assert all(isinstance(r.id, str) for r in records)
    assert records[0].audio_path == dvlog_root / "0" / "0_acoustic.npy"


def test_modalities_are_truncated_to_the_shorter_with_one_warning(tmp_path, caplog):
    vlogs = [
        HandVlog("a", audio_steps=10, video_steps=12),
        HandVlog("b", audio_steps=40, video_steps=15),
        HandVlog("c", audio_steps=7, video_steps=7),
    ]
    root = write_dvlog(tmp_path, vlogs)
    with caplog.at_level(logging.WARNING):
        loaded = load_vlogs(read_dvlog_index(root), 25, 136)
    assert [v.length for v in loaded] == [10, 15, 7]
    assert all(v.audio.shape[0] == v.video.shape[0] for v in loaded)
    full_audio = np.load(root / "b" / "b_acoustic.npy")
    np.testing.assert_array_equal(loaded[1].audio, full_audio[:15].astype(np.float32))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2 of 3 vlogs" in warnings[0].getMessage()
    assert "2 to 25 steps" in warnings[0].getMessage()


def test_all_zero_rows_are_data_not_padding(tmp_path):
    root = write_dvlog(
        tmp_path,
        [HandVlog("0", audio_steps=6, video_steps=6), HandVlog("1", audio_steps=9, video_steps=9)],
    )
    visual = np.load(root / "0" / "0_visual.npy")
    visual[2:4] = 0.0  # no face found in two frames
    visual[-1] = 0.0  # ... including the last one
    np.save(root / "0" / "0_visual.npy", visual)
    dm = DepressionDataModule(root=root, standardize=False, batch_size=2)
    batch = next(iter(dm.fold_dataloader("train")))
    row = batch["id"].index("0")
    assert batch["lengths"][row] == 6
    assert batch["video"].shape[1] == 9
    np.testing.assert_array_equal(batch["video"][row, :6].numpy(), visual.astype(np.float32))
    assert (batch["video"][row, 6:] == 0).all()  # padding after the valid steps
