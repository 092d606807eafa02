"""Per-frame normalisation of 68-point facial landmarks.

D-Vlog's landmarks are pixel coordinates of a face that moves, grows and
shrinks with the camera: between vlogs (and within one) most of their variance
is where the face is and how large, not what it does. Normalising each frame
puts every face in its own coordinates:

* ``center_scale``: the origin at the midpoint of the two eye centres, one unit
  the distance between them (inter-ocular distance); invariant to shifting and
  scaling the face;
* ``similarity``: the same, then rotated so that the eye line is horizontal;
  also invariant to rotating it (head roll).

Rows are ``x0..x67, y0..y67`` (D-Vlog's order and prepared LMVD's). A row with
no face (all zeros), or whose eyes coincide, stays all-zero in
:func:`normalize_landmarks`; :func:`normalize_faces`, which prepares a vlog for
a model, gives such frames the vlog's mean face instead. In face coordinates a
zero row is far from every real face, so after standardisation it would be an
outlier many standard deviations wide that dominates any statistic of the
vlog's movements; the mean face adds no movement (it lowers a vlog's temporal
variability by the share of frames without a face, a few percent). LMVD's prepared
rows are standardised across their 136 values, which is itself a shift and a
scaling of the face, so either normalisation gives the same result on them as
on the pixels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from dynmultidep.data.vlogs import Vlog

FACE_NORMALIZATIONS = ("center_scale", "similarity")
N_LANDMARKS = 68
RIGHT_EYE = slice(36, 42)  # the subject's right eye (left in the image), iBUG order
LEFT_EYE = slice(42, 48)
MIN_EYE_DISTANCE = 1e-6


def normalize_landmarks(rows: np.ndarray, method: str = "center_scale") -> np.ndarray:
    """``(T, 136)`` landmark rows -> ``(T, 136)`` in face coordinates (float32).

    See the module docstring for ``method``.
    """
    if method not in FACE_NORMALIZATIONS:
        raise ValueError(
            f"unknown face normalisation {method!r}; use one of {', '.join(FACE_NORMALIZATIONS)}"
        )
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 2 * N_LANDMARKS:
        raise ValueError(f"landmark rows must have shape (T, {2 * N_LANDMARKS}), got {rows.shape}")
    points = np.stack([rows[:, :N_LANDMARKS], rows[:, N_LANDMARKS:]], axis=-1)  # (T, 68, 2)
    right, left = points[:, RIGHT_EYE].mean(1), points[:, LEFT_EYE].mean(1)  # (T, 2)
    eye_line = left - right
    distance = np.linalg.norm(eye_line, axis=-1)  # (T,)
    usable = (rows != 0).any(axis=1) & (distance > MIN_EYE_DISTANCE)
    safe = np.where(usable, distance, 1.0)[:, None, None]
    local = (points - 0.5 * (right + left)[:, None, :]) / safe
    if method == "similarity":
        angle = np.arctan2(eye_line[:, 1], eye_line[:, 0])
        cos, sin = np.cos(-angle)[:, None], np.sin(-angle)[:, None]
        x, y = local[..., 0], local[..., 1]
        local = np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)
    out = np.concatenate([local[..., 0], local[..., 1]], axis=1)
    out[~usable] = 0.0
    return out.astype(np.float32)


def faces_found(rows: np.ndarray) -> np.ndarray:
    """``(T, D) -> (T,)`` bool: the rows holding a face (the corpora write an
    all-zero row for a frame with no face)."""
    return np.any(rows != 0, axis=1)


def fill_missing_faces(rows: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``rows (T, 136)`` with the rows where ``found (T,)`` is False set to the mean of
    the others (left at zero when no frame has a face)."""
    if found.all() or not found.any():
        return rows
    out = rows.copy()
    out[~found] = rows[found].mean(axis=0)
    return out


def normalize_faces(vlogs: Sequence[Vlog], method: str | None) -> list[Vlog]:
    """``vlogs`` with their landmark rows normalised by ``method`` (``None``: unchanged)
    and frames without a face given the vlog's mean face."""
    if method is None:
        return list(vlogs)
    out = []
    for v in vlogs:
        face = normalize_landmarks(v.video, method)
        out.append(dataclasses.replace(v, video=fill_missing_faces(face, faces_found(face))))
    return out
