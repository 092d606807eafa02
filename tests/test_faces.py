"""Per-frame landmark normalisation: invariances, no-face rows, and its DataModule option."""

from __future__ import annotations

import numpy as np
import pytest

from dynmultidep.data import DepressionDataModule
from dynmultidep.data.faces import (
    POSE_COLUMNS,
    FacePreparation,
    face_like_share,
    fill_missing_faces,
    head_pose,
    normalize_landmarks,
)
from dynmultidep.data.openface import standardize_rows
from dynmultidep.data.synthetic.signals import FACE, landmark_rows
from dynmultidep.data.vlogs import Vlog


def faces(steps=10, seed=0) -> np.ndarray:
    """``(steps, 68, 2)`` slightly different frontal faces, in face units."""
    rng = np.random.default_rng(seed)
    return FACE + 0.05 * rng.standard_normal((steps, 68, 2))


def transform(points, shift, scale, angle=0.0):
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    return points @ rotation.T * scale + shift


def test_center_scale_is_invariant_to_shifting_and_scaling_each_frame():
    points = faces()
    rng = np.random.default_rng(1)
    moved = np.stack([transform(p, rng.uniform(100, 900, 2), rng.uniform(20, 200))
                      for p in points])  # fmt: skip
    a = normalize_landmarks(landmark_rows(points * 37.0 + 5.0))
    b = normalize_landmarks(landmark_rows(moved))
    np.testing.assert_allclose(a, b, atol=1e-5)
    # the eye centres lie one unit apart, either side of the origin
    x, y = a[:, :68], a[:, 68:]
    right = np.stack([x[:, 36:42].mean(1), y[:, 36:42].mean(1)], axis=1)
    left = np.stack([x[:, 42:48].mean(1), y[:, 42:48].mean(1)], axis=1)
    np.testing.assert_allclose(np.linalg.norm(left - right, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(left + right, 0.0, atol=1e-5)


def test_similarity_is_also_invariant_to_rotation():
    points = faces()
    rng = np.random.default_rng(2)
    moved = np.stack([transform(p, rng.uniform(100, 900, 2), rng.uniform(20, 200),
                                rng.uniform(-0.5, 0.5)) for p in points])  # fmt: skip
    a = normalize_landmarks(landmark_rows(points), "similarity")
    b = normalize_landmarks(landmark_rows(moved), "similarity")
    np.testing.assert_allclose(a, b, atol=1e-5)
    x, y = a[:, :68], a[:, 68:]
    np.testing.assert_allclose(x[:, 42:48].mean(1), 0.5, rtol=1e-5)  # eye line horizontal
    np.testing.assert_allclose(y[:, 42:48].mean(1), 0.0, atol=1e-5)
    # without rotation, a rolled head is not the same face
    c = normalize_landmarks(landmark_rows(moved), "center_scale")
    assert np.abs(a - c).max() > 0.05


def test_no_face_rows_stay_zero_and_standardised_rows_give_the_same_faces():
    rows = landmark_rows(faces() * 90.0 + 400.0)
    rows[3] = 0.0
    out = normalize_landmarks(rows)
    assert (out[3] == 0).all() and (out[[0, 1, 2, 4]] != 0).any(axis=1).all()
    # LMVD's prepared rows (each standardised across its 136 values) are a shift and a
    # scaling of the face: the same face coordinates come out
    np.testing.assert_allclose(normalize_landmarks(standardize_rows(rows)), out, atol=1e-4)


def test_frames_without_a_face_get_the_vlogs_mean_face():
    rows = landmark_rows(faces() * 90.0 + 400.0)
    rows[[2, 5]] = 0.0
    vlog = Vlog("1", 1, "f", np.zeros((10, 25), np.float32), rows.astype(np.float32))
    (prepared,) = FacePreparation("center_scale").apply([vlog])
    normalised = normalize_landmarks(rows.astype(np.float32))
    found = np.ones(10, bool)
    found[[2, 5]] = False
    np.testing.assert_allclose(prepared.video[found], normalised[found])
    np.testing.assert_allclose(prepared.video[2], normalised[found].mean(0), rtol=1e-5)
    assert FacePreparation(None, head_pose=True).apply([vlog])[0] is vlog
    empty = np.zeros((3, 136), np.float32)
    assert (fill_missing_faces(empty, np.zeros(3, bool)) == 0).all()


def test_bad_method_and_shape_are_refused():
    with pytest.raises(ValueError, match="unknown face normalisation"):
        normalize_landmarks(np.zeros((2, 136)), "procrustes")
    with pytest.raises(ValueError, match=r"\(T, 136\)"):
        normalize_landmarks(np.zeros((2, 10)))


def test_datamodule_normalises_faces_before_fitting_statistics(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog")
    plain = DepressionDataModule(root=root, standardize=False)
    normalised = DepressionDataModule(root=root, standardize=False, face_normalization="similarity")
    raw = plain.fold("train")[0].video
    face = normalised.fold("train")[0].video
    found = (raw != 0).any(axis=1)
    np.testing.assert_allclose(face[found], normalize_landmarks(raw, "similarity")[found])
    assert np.abs(raw).max() > 100 and np.abs(face).max() < 5
    with pytest.raises(ValueError, match="face_normalization"):
        DepressionDataModule(root=root, face_normalization="eyes")


def test_face_coordinates_are_standardised_with_one_shared_scale(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog")
    datamodule = DepressionDataModule(root=root, face_normalization="center_scale")
    datamodule.setup("fit")
    datamodule.standardizer.fit(datamodule.fold("train"))
    audio_mean, audio_std = datamodule.standardizer.stats["audio"]
    video_mean, video_std = datamodule.standardizer.stats["video"]
    assert len(set(video_std.tolist())) == 1  # one scale for every landmark coordinate
    assert len(set(audio_std.tolist())) > 1  # descriptors keep their own
    faces = np.concatenate([v.video for v in datamodule.fold("train")]).astype(np.float64)
    np.testing.assert_allclose(video_mean.numpy(), faces.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(video_std[0]), np.sqrt(faces.var(0).mean()), rtol=1e-4)
    plain = DepressionDataModule(root=root)
    plain.standardizer.fit(plain.fold("train"))
    assert len(set(plain.standardizer.stats["video"][1].tolist())) > 1


def moving_faces(steps=12, seed=2, rolls=True):
    """``(steps, 68, 2)`` one face moved, scaled (and rolled) anew in each frame, with
    the per-frame shifts ``(steps, 2)``, scales ``(steps,)`` and angles ``(steps,)``."""
    rng = np.random.default_rng(seed)
    shifts = rng.uniform(200, 700, (steps, 2))
    scales = rng.uniform(40, 160, steps)
    angles = rng.uniform(-0.3, 0.3, steps) if rolls else np.zeros(steps)
    points = np.stack([transform(FACE, s, k, a) for s, k, a in zip(shifts, scales, angles,
                                                                    strict=True)])  # fmt: skip
    return points, shifts, scales, angles


def test_head_pose_is_the_movement_the_normalisation_removes():
    points, shifts, scales, angles = moving_faces()
    pose = head_pose(landmark_rows(points))
    assert pose.shape == (12, len(POSE_COLUMNS)) and pose.dtype == np.float32
    # FACE's eye midpoint and inter-ocular distance, moved as the face was
    eyes = FACE[36:42].mean(0), FACE[42:48].mean(0)
    centre0, distance0 = 0.5 * (eyes[0] + eyes[1]), np.linalg.norm(eyes[1] - eyes[0])
    centre = np.stack([transform(centre0[None], s, k, a)[0]
                       for s, k, a in zip(shifts, scales, angles, strict=True)])  # fmt: skip
    unit = np.median(scales) * distance0
    np.testing.assert_allclose(pose[:, :2], (centre - np.median(centre, 0)) / unit, atol=1e-5)
    np.testing.assert_allclose(pose[:, 2], np.log(scales / np.median(scales)), atol=1e-5)
    np.testing.assert_allclose(pose[:, 3], angles - np.median(angles), atol=1e-5)
    # the shape does not move: every frame gives the same face coordinates
    shape = normalize_landmarks(landmark_rows(points), "similarity")
    np.testing.assert_allclose(shape, np.broadcast_to(shape[0], shape.shape), atol=1e-5)
    # moving or scaling the whole vlog moves neither the pose nor the shape
    moved = landmark_rows(transform(points, np.array([-150.0, 80.0]), 1.7))
    np.testing.assert_allclose(head_pose(moved), pose, atol=1e-5)
    np.testing.assert_allclose(normalize_landmarks(moved, "similarity"), shape, atol=1e-5)


def test_frames_without_a_face_take_the_median_pose():
    points, *_ = moving_faces()
    rows = landmark_rows(points)
    rows[[0, 7]] = 0.0
    pose = head_pose(rows)
    assert (pose[[0, 7]] == 0).all() and (pose[1:7] != 0).any()
    assert (head_pose(np.zeros((4, 136))) == 0).all()


def test_face_preparation_appends_the_pose_columns():
    points, *_ = moving_faces()
    rows = landmark_rows(points).astype(np.float32)
    vlog = Vlog("1", 1, "f", np.zeros((12, 25), np.float32), rows)
    (with_pose,) = FacePreparation("similarity", head_pose=True).apply([vlog])
    (without,) = FacePreparation("similarity", head_pose=False).apply([vlog])
    assert with_pose.video.shape == (12, 136 + 4) and without.video.shape == (12, 136)
    np.testing.assert_array_equal(with_pose.video[:, :136], without.video)
    np.testing.assert_allclose(with_pose.video[:, 136:], head_pose(rows))
    assert FacePreparation("center_scale", head_pose=True).pose_columns == POSE_COLUMNS
    assert FacePreparation(None, head_pose=True).pose_columns == ()
    with pytest.raises(ValueError, match="face_normalization"):
        FacePreparation("eyes")


def test_landmarks_look_like_a_face_and_other_columns_do_not():
    rng = np.random.default_rng(0)
    rows = landmark_rows(moving_faces()[0])
    assert face_like_share(rows) == 1.0
    assert face_like_share(standardize_rows(rows)) == 1.0  # prepared LMVD rows
    assert face_like_share(rng.normal(size=(200, 136))) < 0.2  # descriptors, not points
    assert face_like_share(np.abs(rng.normal(size=(200, 136))) * 300) < 0.2
    assert np.isnan(face_like_share(np.zeros((3, 136))))


def test_normalising_columns_that_are_not_a_face_warns_once(tmp_path, caplog):
    from conftest import write_dvlog

    write_dvlog(tmp_path / "corpus")
    with caplog.at_level("WARNING", logger="dynmultidep.data.faces"):
        datamodule = DepressionDataModule(root=tmp_path / "corpus", face_normalization="similarity")
        datamodule.setup("fit")
    warnings = [r.getMessage() for r in caplog.records if "do not look like" in r.getMessage()]
    assert len(warnings) == 1
    assert str(tmp_path / "corpus") in warnings[0]
    assert "dataset.face_normalization=similarity" in warnings[0]


def test_synthetic_landmarks_raise_no_warning(synthetic_corpus, caplog):
    root, _ = synthetic_corpus("dvlog")
    with caplog.at_level("WARNING", logger="dynmultidep.data.faces"):
        DepressionDataModule(root=root, face_normalization="similarity").setup("fit")
    assert not [r for r in caplog.records if "do not look like" in r.getMessage()]


def test_pose_columns_keep_their_own_scale_beside_the_shared_one(synthetic_corpus):
    root, _ = synthetic_corpus("dvlog")
    datamodule = DepressionDataModule(root=root, face_normalization="similarity", head_pose=True)
    assert datamodule.video_dim == 140
    datamodule.setup("fit")
    assert datamodule.fold("train")[0].video.shape[1] == 140
    datamodule.standardizer.fit(datamodule.fold("train"))
    _, video_std = datamodule.standardizer.stats["video"]
    assert len(set(video_std[:136].tolist())) == 1  # landmarks share one unit
    pose = np.concatenate([v.video[:, 136:] for v in datamodule.fold("train")]).astype(np.float64)
    np.testing.assert_allclose(video_std[136:].numpy(), pose.std(0), rtol=1e-4)


def test_checkpoints_say_how_their_faces_were_prepared():
    from dynmultidep.tasks.checkpoint import face_preparation

    def checkpoint(**dataset):
        return {"run_config": {"dataset": dataset}}

    pose = checkpoint(face_normalization="similarity", head_pose=True)
    assert face_preparation(pose) == FacePreparation("similarity", head_pose=True)
    older = checkpoint(face_normalization="similarity")  # written before pose columns
    assert face_preparation(older).pose_columns == ()
    assert face_preparation({}) == FacePreparation()
