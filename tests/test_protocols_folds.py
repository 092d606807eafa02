"""k-fold splits: the folds partition the pool, are stratified by label and gender,
keep groups together; each job's validation share is disjoint from its held-out
fold; bad settings and groups files are refused; select_on_test is never the default."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from pathlib import Path

import pytest

from conftest import compose_config
from dynmultidep.data.records import Record
from dynmultidep.errors import DataError
from dynmultidep.protocols.kfold import (
    OPTIMISTIC,
    KFold,
    assign,
    job_split,
    read_folds,
    write_folds,
)


def make_records(n: int = 70, test_every: int = 0) -> list[Record]:
    """``n`` vlogs: labels 3:2 (depressed first), genders alternating; every
    ``test_every``-th vlog in the official test fold."""
    records = []
    for i in range(n):
        fold = (
            "test" if test_every and i % test_every == 0 else ("valid" if i % 7 == 1 else "train")
        )
        label = int(i % 5 < 3)
        gender = "f" if i % 2 else "m"
        records.append(Record(str(i), label, fold, gender, Path(f"{i}.a"), Path(f"{i}.v")))
    return records


def strata_counts(records, ids) -> Counter:
    return Counter((r.label, r.gender) for r in records if r.id in ids)


def test_folds_partition_the_pool_and_are_stratified():
    records = make_records()
    folds, _ = assign(records, KFold(fold=0, k=5, seed=3))
    assert sorted(folds, key=int) == [r.id for r in records]  # every vlog, exactly once
    assert set(folds.values()) == set(range(5))
    totals = strata_counts(records, set(folds))
    for f in range(5):
        held = {i for i, g in folds.items() if g == f}
        for stratum, count in strata_counts(records, held).items():
            assert abs(count - totals[stratum] / 5) < 1, (f, stratum)
    # the same settings give the same folds; another seed others
    assert assign(records, KFold(fold=0, k=5, seed=3))[0] == folds
    assert assign(records, KFold(fold=0, k=5, seed=4))[0] != folds


def test_every_job_validates_on_vlogs_outside_its_held_out_fold():
    records = make_records()
    tested = []
    for f in range(5):
        split = job_split(records, KFold(fold=f, k=5, seed=1, valid_share=0.2))
        train, valid, test = split["train"], split["valid"], split["test"]
        assert not (train & valid) and not (train & test) and not (valid & test)
        assert train | valid | test == {r.id for r in records}
        assert {r.label for r in records if r.id in valid} == {0, 1}
        assert len(valid) == pytest.approx(0.2 * (len(train) + len(valid)), abs=2)
        tested += sorted(test)
    assert sorted(tested) == sorted(r.id for r in records)  # out-of-fold: each vlog once


def test_select_on_test_validates_on_the_reported_fold_and_says_so():
    records = make_records()
    honest = job_split(records, KFold(fold=2, k=5))
    optimistic = job_split(records, KFold(fold=2, k=5, select_on_test=True))
    assert optimistic["valid"] == optimistic["test"] == honest["test"]
    assert optimistic["train"] == honest["train"] | honest["valid"]
    assert KFold(select_on_test=True).protocol == OPTIMISTIC
    assert "optimistic" in OPTIMISTIC and "optimistic" not in KFold().protocol


def test_pool_train_valid_leaves_the_official_test_fold_untouched():
    records = make_records(test_every=5)
    official_test = {r.id for r in records if r.fold == "test"}
    folds, _ = assign(records, KFold(fold=0, k=4, pool="train_valid"))
    assert not official_test & set(folds)
    assert set(folds) == {r.id for r in records} - official_test
    for f in range(4):
        split = job_split(records, KFold(fold=f, k=4, pool="train_valid"))
        assert not official_test & (split["train"] | split["valid"] | split["test"])


def test_groups_stay_in_one_fold(tmp_path):
    records = make_records()
    # groups of 1 to 4 consecutive vlogs (a speaker's vlogs share a label here)
    groups, start, size = {}, 0, 1
    while start < len(records):
        for r in records[start : start + size]:
            groups[r.id] = f"speaker{start}"
        start, size = start + size, size % 4 + 1
    path = tmp_path / "groups.csv"
    path.write_text("id,group\n" + "".join(f"{i},{g}\n" for i, g in groups.items()))
    folds, read = assign(records, KFold(fold=0, k=5, groups=str(path)))
    assert read == groups
    for group in set(groups.values()):
        assert len({folds[i] for i, g in groups.items() if g == group}) == 1, group
    sizes = Counter(folds.values())
    assert max(sizes.values()) - min(sizes.values()) <= 4
    for f in range(5):  # the validation share keeps groups out of the held-out fold too
        split = job_split(records, KFold(fold=f, k=5, groups=str(path), valid_share=0.2))
        for group in set(groups.values()):
            members = {i for i, g in groups.items() if g == group}
            assert sum(bool(members & split[role]) for role in ("train", "valid", "test")) == 1


def test_a_participants_sessions_stay_in_one_fold(tmp_path):
    from dataclasses import replace

    # participants of 1 to 3 consecutive sessions; a groups file putting vlogs 0 and 3 in
    # one group links participants p0 and p3, whose sessions then all share a fold
    records, start, size = [], 0, 1
    for r in make_records():
        if int(r.id) >= start + size:
            start, size = int(r.id), size % 3 + 1
        records.append(replace(r, participant=f"p{start}"))
    path = tmp_path / "groups.csv"
    path.write_text("id,group\n0,g\n3,g\n")
    for groups in (None, str(path)):
        sessions = {}
        for r in records:
            sessions.setdefault("g" if groups and r.participant in ("p0", "p3") else r.participant,
                                set()).add(r.id)  # fmt: skip
        assert max(len(ids) for ids in sessions.values()) > 2
        folds, _ = assign(records, KFold(fold=0, k=5, groups=groups))
        for ids in sessions.values():
            assert len({folds[i] for i in ids}) == 1, ids
        for f in range(5):  # nor do they straddle train, valid and test
            split = job_split(records, KFold(fold=f, k=5, groups=groups, valid_share=0.2))
            for ids in sessions.values():
                assert sum(bool(ids & split[role]) for role in ("train", "valid", "test")) == 1
    # one session per participant: the folds of vlogs without participants
    alone = [replace(r, participant=r.id) for r in make_records()]
    assert assign(alone, KFold(fold=0, k=5))[0] == assign(make_records(), KFold(fold=0, k=5))[0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id,group\n0,a\nnot_a_vlog,b\n", "names 1 id(s) not in the corpus (e.g. 'not_a_vlog')"),
        ("id,group\n0,a\n0,b\n", "line 3: id '0' is listed more than once"),
        ("vlog,speaker\n0,a\n", "lacks column(s) id, group"),
        ("id,group\n0,\n", "line 2: empty id or group"),
    ],
)
def test_a_bad_groups_file_is_refused_naming_it(tmp_path, text, problem):
    path = tmp_path / "groups.csv"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        assign(make_records(), KFold(fold=0, k=5, groups=str(path)))
    assert str(err.value).startswith(str(path)) and problem in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_kfold_settings_are_refused():
    records = make_records(12)  # 8 depressed, 4 normal
    with pytest.raises(
        ValueError, match="5 folds need at least 5 normal vlogs in the pool, it has 4"
    ):
        assign(records, KFold(fold=0, k=5))
    bad_settings = [
        ({"pool": "test"}, "kfold.pool"),
        ({"k": 1}, "kfold.k"),
        ({"fold": 5, "k": 5}, "kfold.fold"),
        ({"valid_share": 1.0}, "valid_share"),
    ]
    for bad, match in bad_settings:
        with pytest.raises(ValueError, match=match):
            KFold.from_config(bad)


def test_folds_csv_round_trips(tmp_path):
    folds, _ = assign(make_records(), KFold(fold=0, k=5))
    write_folds(tmp_path / "folds.csv", folds)
    assert read_folds(tmp_path / "folds.csv") == folds
    assert (tmp_path / "folds.csv").read_text().startswith("id,fold\n")


def test_select_on_test_is_never_the_default():
    for overrides in ([], ["sweep=kfold"], ["experiment=dvlog_dynmultidep"]):
        cfg = compose_config("train", overrides)
        assert cfg.kfold.select_on_test is False, overrides
        assert set(cfg.kfold) == {f.name for f in fields(KFold)}  # the config mirrors the code
    assert KFold().select_on_test is False and KFold().fold is None
