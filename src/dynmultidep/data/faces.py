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

What the normalisation removes is itself a behavioural signal: how much the
head moves (reduced head movement is one of the best-documented markers of
depression). With ``head_pose`` (:class:`FacePreparation`), four pose channels
are kept beside the shape (:func:`head_pose`): the eye midpoint's position
relative to the vlog's median position, in units of the vlog's median
inter-ocular distance, the log of the inter-ocular distance against that median
(closer or farther from the camera), and the eye line's roll against its median
angle. Shifting or scaling a whole vlog changes none of them; moving the face
within it changes the pose, not the shape.

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
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dynmultidep.data.vlogs import Vlog

log = logging.getLogger(__name__)

FACE_NORMALIZATIONS = ("center_scale", "similarity")
POSE_COLUMNS = ("head_x", "head_y", "head_log_scale", "head_roll")
N_LANDMARKS = 68
RIGHT_EYE = slice(36, 42)  # the subject's right eye (left in the image), iBUG order
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)
NOSE_TIP = 30
JAW_ENDS = (0, 16)
MIN_EYE_DISTANCE = 1e-6


@dataclass(frozen=True)
class EyeGeometry:
    """Per-frame eye geometry of ``(T, 136)`` landmark rows.

    ``points: (T, 68, 2)``; ``centre, eye_line: (T, 2)`` (midpoint of the eye centres,
    right to left eye); ``distance, angle: (T,)`` (inter-ocular distance, eye line's
    angle); ``usable: (T,)`` frames with a face whose eyes are apart.
    """

    points: np.ndarray
    centre: np.ndarray
    eye_line: np.ndarray
    distance: np.ndarray
    angle: np.ndarray
    usable: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray) -> EyeGeometry:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 2 * N_LANDMARKS:
            raise ValueError(
                f"landmark rows must have shape (T, {2 * N_LANDMARKS}), got {rows.shape}"
            )
        points = np.stack([rows[:, :N_LANDMARKS], rows[:, N_LANDMARKS:]], axis=-1)
        right, left = points[:, RIGHT_EYE].mean(1), points[:, LEFT_EYE].mean(1)
        eye_line = left - right
        distance = np.linalg.norm(eye_line, axis=-1)
        usable = (rows != 0).any(axis=1) & (distance > MIN_EYE_DISTANCE)
        angle = np.arctan2(eye_line[:, 1], eye_line[:, 0])
        return cls(points, 0.5 * (right + left), eye_line, distance, angle, usable)


def normalize_landmarks(rows: np.ndarray, method: str = "center_scale") -> np.ndarray:
    """``(T, 136)`` landmark rows -> ``(T, 136)`` in face coordinates (float32).

    See the module docstring for ``method``.
    """
    if method not in FACE_NORMALIZATIONS:
        raise ValueError(
            f"unknown face normalisation {method!r}; use one of {', '.join(FACE_NORMALIZATIONS)}"
        )
    eyes = EyeGeometry.of(rows)
    usable = eyes.usable
    safe = np.where(usable, eyes.distance, 1.0)[:, None, None]
    local = (eyes.points - eyes.centre[:, None, :]) / safe
    if method == "similarity":
        cos, sin = np.cos(-eyes.angle)[:, None], np.sin(-eyes.angle)[:, None]
        x, y = local[..., 0], local[..., 1]
        local = np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)
    out = np.concatenate([local[..., 0], local[..., 1]], axis=1)
    out[~usable] = 0.0
    return out.astype(np.float32)


def head_pose(rows: np.ndarray) -> np.ndarray:
    """``(T, 136)`` landmark rows -> ``(T, 4)`` pose channels (:data:`POSE_COLUMNS`,
    float32): position, log scale and roll against the vlog's medians (see the module
    docstring). Frames without a usable face get the median pose (zeros)."""
    eyes = EyeGeometry.of(rows)
    pose = np.zeros((len(eyes.usable), len(POSE_COLUMNS)))
    if not eyes.usable.any():
        return pose.astype(np.float32)
    used = eyes.usable
    unit = np.median(eyes.distance[used])
    pose[used, :2] = (eyes.centre[used] - np.median(eyes.centre[used], axis=0)) / unit
    pose[used, 2] = np.log(eyes.distance[used] / unit)
    roll = eyes.angle[used] - np.median(eyes.angle[used])
    pose[used, 3] = np.angle(np.exp(1j * roll))  # wrapped to (-pi, pi]
    return pose.astype(np.float32)


def face_like_share(rows: np.ndarray) -> float:
    """Share of the frames with a face in ``(T, 136)`` rows whose points are placed as a
    face's are, in the eye line's frame and inter-ocular units: the nose tip and then
    the mouth below the eyes, the jaw's ends wider apart than the eyes. Landmarks give
    about 1; columns that are not landmarks (descriptors, action units) about 0.
    Invariant to shifting, scaling and rotating faces, so pixel rows and rows
    standardised per frame (prepared LMVD) both pass; NaN without a face."""
    eyes = EyeGeometry.of(rows)
    if not eyes.usable.any():
        return float("nan")
    face = normalize_landmarks(rows, "similarity")[eyes.usable]
    x, y = face[:, :N_LANDMARKS], face[:, N_LANDMARKS:]
    mouth = y[:, MOUTH].mean(1)
    nose = y[:, NOSE_TIP]
    jaw = np.abs(x[:, JAW_ENDS[1]] - x[:, JAW_ENDS[0]])
    # image y points down: below the eyes is positive
    placed = (nose > 0.2) & (nose < mouth) & (mouth < 3.0) & (jaw > 1.2) & (jaw < 4.0)
    return float(placed.mean())


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


@dataclass(frozen=True)
class FacePreparation:
    """How landmark rows are prepared for a model.

    Args:
        normalization: ``None`` (rows as stored), ``center_scale`` or ``similarity``.
        head_pose: with a normalisation, append the :data:`POSE_COLUMNS` it removed
            (no effect without one: the rows then keep the face's position).
    """

    normalization: str | None = None
    head_pose: bool = False

    def __post_init__(self) -> None:
        if self.normalization is not None and self.normalization not in FACE_NORMALIZATIONS:
            raise ValueError(
                f"face_normalization must be null or one of {', '.join(FACE_NORMALIZATIONS)}, "
                f"got {self.normalization!r}"
            )

    @property
    def pose_columns(self) -> tuple[str, ...]:
        """The columns appended to the visual rows."""
        return POSE_COLUMNS if self.normalization is not None and self.head_pose else ()

    def apply(self, vlogs: Sequence[Vlog]) -> list[Vlog]:
        """``vlogs`` with their landmark rows normalised, frames without a face given the
        vlog's mean face, and the pose columns appended where asked for."""
        if self.normalization is None:
            return list(vlogs)
        out = []
        for v in vlogs:
            face = normalize_landmarks(v.video, self.normalization)
            video = fill_missing_faces(face, faces_found(face))
            if self.pose_columns:
                video = np.concatenate([video, head_pose(v.video)], axis=1)
            out.append(dataclasses.replace(v, video=video))
        return out

    def check_looks_like_faces(self, vlogs: Sequence[Vlog], source: str, frames: int = 4096):
        """Warn once when the rows asked to be normalised do not look like landmarks of a
        face (:func:`face_like_share` under 0.5 over up to ``frames`` frames)."""
        if self.normalization is None or not vlogs:
            return
        rows, taken = [], 0
        for v in vlogs:
            rows.append(v.video[: frames - taken])
            taken += len(rows[-1])
            if taken >= frames:
                break
        share = face_like_share(np.concatenate(rows))
        if share < 0.5:
            log.warning(
                "%s: dataset.face_normalization=%s, but its visual columns do not look like "
                "68 facial landmarks (%.0f%% of the frames checked are placed like a face); "
                "they are normalised as faces all the same: set dataset.face_normalization="
                "null if they are not landmarks",
                source, self.normalization, 100 * (0 if np.isnan(share) else share),
            )  # fmt: skip
