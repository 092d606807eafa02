"""OpenFace feature sets for LMVD (`prepare_lmvd.py --visual ...`): columns, the
features.json record, config widths, and checkpoints refused on other sets."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from conftest import QUIET, REPO, TINY_MODEL, compose_config
from dynmultidep.data import DepressionDataModule
from dynmultidep.data.feature_record import (
    FEATURE_RECORD,
    corpus_visual_columns,
    read_feature_record,
    write_feature_record,
)
from dynmultidep.data.lmvd_prepare import prepare_lmvd
from dynmultidep.data.openface import (
    VISUAL_SETS,
    parse_visual_sets,
    read_visual_sets,
    visual_columns,
)
from dynmultidep.errors import CheckpointError, DataError
from dynmultidep.tasks.checkpoint import check_visual_columns, read_checkpoint
from dynmultidep.tasks.evaluate import evaluate
from dynmultidep.tasks.train import train

AUS = (
    "AU01_r AU02_r AU04_r AU05_r AU06_r AU07_r AU09_r AU10_r AU12_r AU14_r AU15_r AU17_r "
    "AU20_r AU23_r AU25_r AU26_r AU45_r AU01_c AU02_c AU04_c AU05_c AU06_c AU07_c AU09_c "
    "AU10_c AU12_c AU14_c AU15_c AU17_c AU20_c AU23_c AU25_c AU26_c AU28_c AU45_c"
).split()
GAZE = "gaze_0_x gaze_0_y gaze_0_z gaze_1_x gaze_1_y gaze_1_z gaze_angle_x gaze_angle_y".split()
POSE = "pose_Tx pose_Ty pose_Tz pose_Rx pose_Ry pose_Rz".split()
LANDMARKS = [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
# Today's `landmarks` preparation of the synthetic release (tiny, n=12, its split file):
# audio, visual and labels.csv, digest taken with the code before feature sets existed.
LANDMARKS_DIGEST = "6b6a11b68fc99d9efd68b0a0ede7299dd6308747bfb2fb9c60f01b25e17df843"


def test_each_set_has_openface_columns_in_openface_order():
    assert VISUAL_SETS == {
        "landmarks": tuple(LANDMARKS),
        "aus": tuple(AUS),
        "gaze": tuple(GAZE),
        "pose": tuple(POSE),
    }
    assert [len(c) for c in VISUAL_SETS.values()] == [136, 35, 8, 6]
    assert visual_columns(["pose", "landmarks"]) == (*POSE, *LANDMARKS)
    assert parse_visual_sets(" landmarks,aus ,gaze,pose") == ("landmarks", "aus", "gaze", "pose")


def prepare_script():
    spec = importlib.util.spec_from_file_location(
        "prepare_script", REPO / "scripts" / "prepare_lmvd.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_unknown_repeated_or_no_set_names_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown visual feature set\(s\) smile, eyes; valid: "
                       "landmarks, aus, gaze, pose$"):  # fmt: skip
        parse_visual_sets("landmarks,smile,eyes")
    with pytest.raises(ValueError, match=r"named twice: gaze"):
        parse_visual_sets("gaze,pose,gaze")
    with pytest.raises(ValueError, match="no visual feature set given"):
        parse_visual_sets("")
    with pytest.raises(ValueError, match=r"unknown visual feature set\(s\) eyes"):
        prepare_lmvd(tmp_path, tmp_path / "out", visual="eyes")  # before reading the release
    with pytest.raises(SystemExit) as exit_:
        prepare_script().parse_args(["--release", "r", "--out", "o", "--visual", "landmarks,au"])
    assert exit_.value.code == 2
    assert "unknown visual feature set(s) au; valid: landmarks, aus, gaze, pose" in (
        capsys.readouterr().err
    )


# --------------------------------------------------------------- hand-made CSV
def raw_value(frame: int, column: int) -> float:
    """Exact in float32: which frame, which column of the canonical set listing."""
    return frame * 1000 + column / 4


CANONICAL = [c for cols in VISUAL_SETS.values() for c in cols]


def write_full_csv(path: Path, frames: int, failed=frozenset(), drop=()) -> None:
    """Every set's columns, in reverse order among look-alikes, so only exact names work."""
    lookalikes = ["eye_lmk_x_0", "eye_lmk_X_0", "X_0", "p_rx", "AU01_r_extra"]
    header = ["frame", "face_id", "timestamp", "confidence", "success"]
    header += [c for c in reversed(CANONICAL) if c not in drop] + lookalikes
    lines = [", ".join(header)]
    for frame in range(1, frames + 1):
        ok = frame not in failed
        values = {"frame": frame, "face_id": 0, "timestamp": (frame - 1) / 30,
                  "confidence": 0.9 * ok, "success": int(ok)}  # fmt: skip
        values.update({c: -1.0 for c in lookalikes})
        values.update({c: raw_value(frame, k) if ok else 0.0 for k, c in enumerate(CANONICAL)})
        lines.append(", ".join(str(values[c]) for c in header))
    path.write_text("\n".join(lines) + "\n")


def test_sets_side_by_side_in_the_given_order_landmarks_standardised(tmp_path):
    path = tmp_path / "v.csv"
    write_full_csv(path, frames=65, failed={31})
    rows = read_visual_sets(path, ["gaze", "landmarks", "aus"])
    assert rows.dtype == np.float32 and rows.shape == (3, 8 + 136 + 35)
    start = {name: CANONICAL.index(cols[0]) for name, cols in VISUAL_SETS.items()}
    for step, frame in ((0, 1), (2, 61)):
        gaze, landmarks, aus = rows[step, :8], rows[step, 8:144], rows[step, 144:]
        assert gaze.tolist() == [raw_value(frame, start["gaze"] + k) for k in range(8)]
        assert aus.tolist() == [raw_value(frame, start["aus"] + k) for k in range(35)]
        raw = [raw_value(frame, k) for k in range(136)]
        mean, std = statistics.fmean(raw), statistics.pstdev(raw)
        np.testing.assert_allclose(landmarks, [(v - mean) / std for v in raw], rtol=1e-6)
    # no face: zeros in every set, at any position
    assert (rows[1] == 0).all()
    assert (read_visual_sets(path, ["pose", "aus", "gaze", "landmarks"])[1] == 0).all()


def test_a_missing_column_is_named_in_one_line(tmp_path):
    path = tmp_path / "v.csv"
    write_full_csv(path, frames=3, drop={"AU28_c", "pose_Rz"})
    with pytest.raises(DataError) as err:
        read_visual_sets(path, ["landmarks", "aus", "pose"])
    assert str(err.value) == f"{path}: lacks the OpenFace column(s) AU28_c, pose_Rz"
    assert read_visual_sets(path, ["landmarks", "gaze"]).shape == (1, 144)  # not asked for


# ------------------------------------------------------- the synthetic release
@pytest.fixture(scope="module")
def release(synthetic_corpus):
    root, _ = synthetic_corpus("lmvd-release", "tiny", n=12)
    return root


@pytest.fixture(scope="module")
def prepared(release, tmp_path_factory):
    """``prepared(sets)`` -> a corpus folder prepared from the synthetic release, cached."""
    cache = {}

    def make(sets: str) -> Path:
        if sets not in cache:
            out = tmp_path_factory.mktemp("prepared") / sets.replace(",", "_")
            prepare_lmvd(release, out, split_file=release / "split.csv", visual=sets)
            cache[sets] = out
        return cache[sets]

    return make


def digest(root: Path, keep) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and keep(p)):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_the_synthetic_release_writes_every_set_with_plausible_values(release):
    csv = next((release / "Video_feature").glob("*.csv"))
    names = [n.strip() for n in csv.read_text().splitlines()[0].split(",")]
    assert set(CANONICAL) <= set(names)
    assert {"eye_lmk_x_0", "X_0"} <= set(names)  # the look-alikes stay
    table = np.loadtxt(csv, delimiter=",", skiprows=1)
    face = table[:, names.index("success")] == 1
    column = {c: table[face, names.index(c)] for c in CANONICAL}
    assert all(((column[c] >= 0) & (column[c] <= 5)).all() for c in AUS[:17])
    assert all(set(np.unique(column[c])) <= {0.0, 1.0} for c in AUS[17:])
    for eye in (0, 1):
        vectors = np.column_stack([column[f"gaze_{eye}_{a}"] for a in "xyz"])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (np.abs(column["gaze_angle_x"]) < np.pi / 2).all()
    assert (column["pose_Tz"] > 100).all() and (np.abs(column["pose_Rx"]) < np.pi).all()
    assert (table[~face][:, 5:] == 0).all()


def test_landmarks_default_output_is_unchanged(prepared):
    out = prepared("landmarks")
    kept = digest(out, lambda p: p.name != FEATURE_RECORD)
    assert kept == LANDMARKS_DIGEST
    assert read_feature_record(out) == {"visual": {"sets": ["landmarks"], "columns": LANDMARKS}}


def test_all_four_sets_prepare_with_a_record_the_datamodule_reads(prepared):
    out = prepared("landmarks,aus,gaze,pose")
    record = read_feature_record(out)
    assert record["visual"]["sets"] == ["landmarks", "aus", "gaze", "pose"]
    assert record["visual"]["columns"] == LANDMARKS + AUS + GAZE + POSE
    landmarks_only = prepared("landmarks")
    no_faces = 0
    for path in sorted((out / "visual").glob("*.npy")):
        full, alone = np.load(path), np.load(landmarks_only / "visual" / path.name)
        assert full.shape == (alone.shape[0], 185)
        assert np.array_equal(full[:, :136], alone)
        no_face = (alone == 0).all(axis=1)
        assert (full[no_face] == 0).all() and (full[~no_face, 136:] != 0).any(axis=1).all()
        no_faces += no_face.sum()
    assert no_faces > 0
    dm = DepressionDataModule(corpus="lmvd", root=out, video_dim=185)
    assert dm.video_dim == 185 and dm.video_columns == tuple(LANDMARKS + AUS + GAZE + POSE)
    assert dm.fold("train")[0].video.shape[1] == 185
    assert dm.state_dict()["visual_columns"] == record["visual"]["columns"]


def test_the_record_keeps_other_keys_and_readers_ignore_them(tmp_path, release):
    out = tmp_path / "out"
    assert read_feature_record(out) is None
    assert corpus_visual_columns(out, "lmvd") == tuple(LANDMARKS)
    assert corpus_visual_columns(out, "dvlog")[:2] == ("x0", "x1")  # D-Vlog's own names
    write_feature_record(out, "extraction", {"tool": "extract_features.py"})
    write_feature_record(out, "visual", {"columns": ["a", "b"], "unknown": 1})
    assert corpus_visual_columns(out, "lmvd") == ("a", "b")
    prepare_lmvd(release, out, split_file=release / "split.csv", visual="pose", force=True)
    record = json.loads((out / FEATURE_RECORD).read_text())
    assert record == {"extraction": {"tool": "extract_features.py"},
                      "visual": {"sets": ["pose"], "columns": POSE}}  # fmt: skip
    assert not list(out.glob(".*.tmp"))
    (out / FEATURE_RECORD).write_text('{"visual": {"columns": "x_0"}}')
    with pytest.raises(DataError, match="features.json: visual.columns must be a list"):
        DepressionDataModule(corpus="lmvd", root=out)


def test_the_script_prepares_the_sets_it_is_given(tmp_path, release, capsys):
    out = tmp_path / "out"
    argv = ["--release", str(release), "--out", str(out), "--split-file",
            str(release / "split.csv"), "--visual", "pose,landmarks", "--quiet"]  # fmt: skip
    assert prepare_script().main(argv) == 0
    assert "12 vlogs written, 0 already done (visual: pose,landmarks)" in capsys.readouterr().out
    assert read_feature_record(out)["visual"]["columns"] == POSE + LANDMARKS


def test_a_folder_is_not_prepared_with_two_sets(tmp_path, release):
    out = tmp_path / "out"
    split = release / "split.csv"
    prepare_lmvd(release, out, split_file=split, visual="gaze")
    with pytest.raises(DataError) as err:
        prepare_lmvd(release, out, split_file=split, visual="gaze,pose")
    assert str(err.value) == (
        f"{out / FEATURE_RECORD}: this folder was prepared with visual sets gaze (8 columns), "
        "not gaze, pose (14 columns); pass --force to rewrite every vlog, or another --out"
    )
    assert prepare_lmvd(release, out, split_file=split, visual="gaze")["skipped"] == 12
    counts = prepare_lmvd(release, out, split_file=split, visual="gaze,pose", force=True)
    assert counts["written"] == 12
    assert read_feature_record(out)["visual"]["sets"] == ["gaze", "pose"]
    assert {np.load(p).shape[1] for p in (out / "visual").glob("*.npy")} == {14}
    # a folder prepared before features.json existed holds landmarks
    (out / FEATURE_RECORD).unlink()
    with pytest.raises(DataError, match="prepared with visual sets landmarks \\(136 columns\\)"):
        prepare_lmvd(release, out, split_file=split, visual="gaze,pose")


def test_video_dim_follows_the_corpus_record(prepared, tmp_path):
    out = prepared("landmarks,gaze")
    cfg = compose_config("train", ["dataset=lmvd", f"dataset.root={out}"])
    assert cfg.dataset.video_dim == cfg.model.video_dim == 144
    absent = compose_config("train", ["dataset=lmvd", f"dataset.root={tmp_path}/none"])
    assert absent.dataset.video_dim == 136  # no folder yet: the layout's landmarks
    synthetic = compose_config("train", ["dataset=synthetic_lmvd"])
    assert synthetic.dataset.video_dim == 136
    with pytest.raises(DataError) as err:
        DepressionDataModule(corpus="lmvd", root=out, video_dim=136)
    assert str(err.value) == (
        f"{out / FEATURE_RECORD}: records landmarks, gaze (144 columns) but the config says "
        "video_dim=136; remove dataset.video_dim or set it to 144"
    )
    with pytest.raises(ValueError, match="face_normalization='similarity' works on the 136"):
        DepressionDataModule(corpus="lmvd", root=out, face_normalization="similarity")


def test_a_resumed_datamodule_refuses_other_columns(prepared):
    dm = DepressionDataModule(corpus="lmvd", root=prepared("landmarks"))
    dm.load_state_dict({"visual_columns": LANDMARKS})
    with pytest.raises(DataError, match="trained on visual columns landmarks, gaze"):
        dm.load_state_dict({"visual_columns": LANDMARKS + GAZE})


def test_a_model_trained_on_landmarks_and_gaze_is_refused_on_landmarks(prepared, tmp_path):
    train_out, eval_out = tmp_path / "train", tmp_path / "eval"
    cfg = compose_config(
        "train",
        ["dataset=lmvd", f"dataset.root={prepared('landmarks,gaze')}", "dataset.batch_size=8",
         "dataset.max_tokens=null", "trainer.max_epochs=1", f"paths.output_dir={train_out}",
         "~logger", *TINY_MODEL, *QUIET],
    )  # fmt: skip
    train(cfg)
    ckpt = train_out / "checkpoints" / "last.ckpt"
    checkpoint = read_checkpoint(ckpt)
    assert checkpoint["DepressionDataModule"]["visual_columns"] == LANDMARKS + GAZE
    assert checkpoint["hyper_parameters"]["model"]["video_dim"] == 144
    check_visual_columns(checkpoint, LANDMARKS + GAZE, ckpt)
    check_visual_columns({}, LANDMARKS, ckpt)  # older checkpoints do not record them

    landmarks_only = prepared("landmarks")
    cfg = compose_config(
        "eval", [f"ckpt_path={ckpt}", "dataset=lmvd", f"dataset.root={landmarks_only}",
                 f"paths.output_dir={eval_out}", "~logger", "callbacks.rich_progress_bar=null"],
    )  # fmt: skip
    with pytest.raises(CheckpointError) as err:
        evaluate(cfg)
    assert str(err.value) == (
        f"{ckpt}: the model was trained on visual features landmarks, gaze (144 columns) but "
        "the corpus has landmarks (136 columns); use a corpus prepared with the same sets"
    )
    assert not (eval_out / "metrics.json").exists()
