"""Per-frame landmark normalisation: invariances, no-face rows, and its DataModule option."""

from __future__ import annotations

import numpy as np
import pytest

from dynmultidep.data import DepressionDataModule
from dynmultidep.data.faces import fill_missing_faces, normalize_faces, normalize_landmarks
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
    (prepared,) = normalize_faces([vlog], "center_scale")
    normalised = normalize_landmarks(rows.astype(np.float32))
    found = np.ones(10, bool)
    found[[2, 5]] = False
    np.testing.assert_allclose(prepared.video[found], normalised[found])
    np.testing.assert_allclose(prepared.video[2], normalised[found].mean(0), rtol=1e-5)
    assert normalize_faces([vlog], None)[0] is vlog
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
