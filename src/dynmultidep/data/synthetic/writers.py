"""Writing a planned synthetic corpus in the corpora's own file layouts.

* ``dvlog``: D-Vlog as released (float64 arrays, ``labels.csv`` with
  ``index,label,duration,gender,fold``).
* ``lmvd``: LMVD prepared (what ``scripts/prepare_lmvd.py`` writes).
* ``lmvd-release``: LMVD as released (VGGish ``.npy``, OpenFace CSVs at
  30 fps with the landmarks, gaze, pose and AU columns, one label file per
  vlog), plus ``split.csv`` in the format of the common 8:1:1 split file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dynmultidep.atomic import save_array_atomic, write_text_atomic
from dynmultidep.data import dvlog, lmvd
from dynmultidep.data.lmvd_prepare import LABEL_SUFFIX
from dynmultidep.data.openface import (
    AU_COLUMNS,
    FRAMES_PER_STEP,
    GAZE_COLUMNS,
    LANDMARK_COLUMNS,
    POSE_COLUMNS,
    standardize_rows,
)
from dynmultidep.data.synthetic.cues import draw_cue_streams
from dynmultidep.data.synthetic.plan import PlannedVlog
from dynmultidep.data.synthetic.random_cues import RandomCue
from dynmultidep.data.synthetic.signals import VlogStreams, draw_streams, landmark_rows

LAYOUTS = ("dvlog", "lmvd", "lmvd-release")
DVLOG_LABELS = {1: "depression", 0: "normal"}
# D-Vlog: 14 of 961 vlogs have modalities of different length, 12 by one row
# and 2 by about 25 rows.
MISMATCH_SHARE = 14 / 961


def _modality_steps(plan: Sequence[PlannedVlog], layout: str, rng: np.random.Generator):
    """``(audio_steps, video_steps)`` per vlog; the shorter equals the plan's length."""
    steps = []
    if layout == "dvlog":
        n_mismatch = max(1, round(MISMATCH_SHARE * len(plan)))
        chosen = set(rng.choice(len(plan), n_mismatch, replace=False).tolist())
        big = set(sorted(chosen)[: max(1, round(n_mismatch / 7))])
        for i, vlog in enumerate(plan):
            extra = 0
            if i in chosen:
                extra = int(rng.integers(20, 31)) if i in big else 1
            audio_longer = rng.random() < 0.5
            steps.append(
                (vlog.length + extra * audio_longer, vlog.length + extra * (not audio_longer))
            )
    else:
        # VGGish windows of 0.96 s against 1 s frames: audio has ~4% more rows.
        for vlog in plan:
            steps.append((vlog.length + int(np.ceil(vlog.length / 24)), vlog.length))
    return steps


CUES_FILE = "cues.csv"  # id,informative: the modality that carries each vlog's cue


def _draw(plan, layout, seed, audio_dim, cue):
    """``(vlog, streams, vlog_rng)`` per planned vlog; ``cue`` a family name of
    :data:`~.cues.CUES`, ``bursts``, or a :class:`~.random_cues.RandomCue`."""
    rng = np.random.default_rng([seed, 1])
    for i, (vlog, (audio_steps, video_steps)) in enumerate(
        zip(plan, _modality_steps(plan, layout, rng), strict=True)
    ):
        vlog_rng = np.random.default_rng([seed, 2, i])
        if isinstance(cue, RandomCue):
            streams = cue.draw_streams(vlog_rng, vlog.label, audio_steps, video_steps, audio_dim)
        elif cue == "bursts":
            streams = draw_streams(vlog_rng, vlog.label, audio_steps, video_steps, audio_dim)
        else:
            streams = draw_cue_streams(
                vlog_rng, cue, vlog.label, audio_steps, video_steps, audio_dim
            )
        yield vlog, streams, vlog_rng


def _cue_lines(informative: dict[str, str]) -> str:
    return "id,informative\n" + "".join(f"{i},{m}\n" for i, m in informative.items())


def _duration(vlog_rng: np.random.Generator, length: int) -> str:
    """A duration as D-Vlog writes it: two decimals, a few with float noise."""
    cents = int(vlog_rng.integers(0, 100))
    if vlog_rng.random() < 0.02:
        return repr(length + (cents - 2) / 100 + 0.02)  # e.g. 154.92000000000002
    return f"{length + cents / 100:.2f}"


def write_dvlog(
    root: Path, plan: Sequence[PlannedVlog], seed: int, cue: str | RandomCue = "bursts"
) -> None:
    lines = [",".join(dvlog.COLUMNS)]
    informative = {}
    for vlog, streams, vlog_rng in _draw(plan, "dvlog", seed, dvlog.AUDIO_DIM, cue):
        informative[vlog.id] = streams.informative
        save_array_atomic(dvlog.audio_path(root, vlog.id), streams.audio.astype(np.float64))
        save_array_atomic(dvlog.video_path(root, vlog.id), landmark_rows(streams.landmarks))
        duration = _duration(vlog_rng, vlog.length)
        lines.append(f"{vlog.id},{DVLOG_LABELS[vlog.label]},{duration},{vlog.gender},{vlog.fold}")
    write_text_atomic(root / "labels.csv", "\n".join(lines) + "\n")
    write_text_atomic(root / CUES_FILE, _cue_lines(informative))


def _split_lines(plan: Sequence[PlannedVlog]) -> str:
    lines = [",".join(lmvd.COLUMNS)] + [f"{v.id},{v.label},{v.fold}" for v in plan]
    return "\n".join(lines) + "\n"


def write_lmvd(root: Path, plan: Sequence[PlannedVlog], seed: int, cue: str = "bursts") -> None:
    for vlog, streams, _ in _draw(plan, "lmvd", seed, lmvd.AUDIO_DIM, cue):
        visual = standardize_rows(landmark_rows(streams.landmarks)).astype(np.float32)
        save_array_atomic(lmvd.audio_path(root, vlog.id), streams.audio.astype(np.float32))
        save_array_atomic(lmvd.video_path(root, vlog.id), visual)
    write_text_atomic(root / "labels.csv", _split_lines(plan))


# OpenFace 2.x columns in its order, the landmarks and the sets of
# dynmultidep.data.openface complete; look-alike names (eye_lmk_x_0, X_0) are
# there on purpose: a reader must pick columns by exact name.
_OPENFACE_FRAME = ("frame", "face_id", "timestamp", "confidence", "success")
_EYE_LOOKALIKES = ("eye_lmk_x_0", "eye_lmk_x_1", "eye_lmk_y_0", "eye_lmk_y_1")
_3D_LOOKALIKES = ("X_0", "X_1", "Y_0", "Y_1", "Z_0", "Z_1")


def _gaze(rng: np.random.Generator, frames: int) -> np.ndarray:
    """``(frames, 8)``: unit gaze vectors of both eyes (camera coordinates, towards
    the camera is -z) and the angles OpenFace derives from their mean (radians)."""
    base = rng.normal([0.0, 0.1], [0.15, 0.1])  # where this vlogger tends to look
    angles = base + 0.05 * rng.standard_normal((frames, 2))  # (frames, 2): yaw, pitch
    eyes = []
    for vergence in (0.03, -0.03):  # the eyes converge a little on the camera
        yaw, pitch = angles[:, 0] + vergence, angles[:, 1]
        eyes.append(
            np.column_stack(
                [np.sin(yaw) * np.cos(pitch), np.sin(pitch), -np.cos(yaw) * np.cos(pitch)]
            )
        )
    mean = (eyes[0] + eyes[1]) / 2
    gaze_angles = np.column_stack(
        [np.arctan2(mean[:, 0], -mean[:, 2]), np.arctan2(mean[:, 1], -mean[:, 2])]
    )
    return np.hstack([*eyes, gaze_angles])


def _pose(rng: np.random.Generator, frames: int) -> np.ndarray:
    """``(frames, 6)``: head translation (mm from the camera) and rotation (radians)."""
    place = np.array([rng.normal(0, 30), rng.normal(0, 20), rng.uniform(400, 800)])
    translation = place + rng.normal(0, [5.0, 5.0, 10.0], (frames, 3))
    rotation = rng.normal(0, 0.1, 3) + rng.normal(0, 0.03, (frames, 3))
    return np.hstack([translation, rotation])


def _aus(rng: np.random.Generator, frames: int) -> np.ndarray:
    """``(frames, 35)``: 17 AU intensities in 0..5, then 18 presences (0/1): an AU
    with an intensity is present where it reaches 1; AU28 (no intensity) rarely."""
    level = rng.uniform(0.0, 1.5, 17)  # this vlogger's expressiveness, per AU
    intensity = np.clip(level + 0.6 * rng.standard_normal((frames, 17)), 0.0, 5.0)
    present = intensity >= 1
    au28 = rng.random(frames) < 0.05
    # presences in OpenFace's order: AU01..AU26 as the intensities, then AU28, AU45
    presences = np.column_stack([present[:, :16], au28, present[:, 16]])
    return np.hstack([intensity, presences.astype(float)])


_OPENFACE_HEADER = (
    *_OPENFACE_FRAME,
    *GAZE_COLUMNS,
    *_EYE_LOOKALIKES,
    *POSE_COLUMNS,
    *LANDMARK_COLUMNS,
    *_3D_LOOKALIKES,
    *AU_COLUMNS,
)
_OPENFACE_FORMATS = (
    ["%d", "%d", "%.3f", "%.2f", "%d"]
    + ["%.6f"] * 6  # gaze vectors
    + ["%.3f"] * 2  # gaze angles
    + ["%.3f"] * len(_EYE_LOOKALIKES)
    + ["%.1f"] * 3  # pose_T*
    + ["%.3f"] * 3  # pose_R*
    + ["%.3f"] * len(LANDMARK_COLUMNS)
    + ["%.3f"] * len(_3D_LOOKALIKES)
    + ["%.2f"] * len(AU_COLUMNS)
)


def openface_table(streams: VlogStreams, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """Header and ``(frames, columns)`` values of an OpenFace CSV at 30 fps.

    Frame ``30 k + 1`` holds exactly the landmarks of step ``k``; frames in
    between add a little jitter. Gaze, pose and AUs are plausible values that
    carry no cue; a frame without a face is all zeros after ``success``.
    """
    steps = len(streams.landmarks)
    frames = steps * FRAMES_PER_STEP
    step_of_frame = np.arange(frames) // FRAMES_PER_STEP
    rows = landmark_rows(streams.landmarks)[step_of_frame]
    found = streams.face_found[step_of_frame]
    in_between = (np.arange(frames) % FRAMES_PER_STEP != 0) & found
    rows[in_between] += 0.3 * rng.standard_normal((int(in_between.sum()), rows.shape[1]))
    frame = np.column_stack(
        [
            np.arange(1, frames + 1),  # frame
            np.zeros(frames),  # face_id
            np.arange(frames) / FRAMES_PER_STEP,  # timestamp
            np.where(found, rng.uniform(0.85, 0.98, frames), 0.0),  # confidence
            found.astype(float),  # success
        ]
    )
    face = found[:, None]
    eye_lookalikes = rng.standard_normal((frames, len(_EYE_LOOKALIKES))) * face
    lookalikes_3d = rng.standard_normal((frames, len(_3D_LOOKALIKES))) * face
    table = np.hstack(
        [
            frame,
            _gaze(rng, frames) * face,
            eye_lookalikes,
            _pose(rng, frames) * face,
            rows,
            lookalikes_3d,
            _aus(rng, frames) * face,
        ]
    )
    return ", ".join(_OPENFACE_HEADER), table


def write_lmvd_release(
    root: Path, plan: Sequence[PlannedVlog], seed: int, cue: str = "bursts"
) -> None:
    for i, (vlog, streams, vlog_rng) in enumerate(_draw(plan, "lmvd", seed, lmvd.AUDIO_DIM, cue)):
        save_array_atomic(
            root / "Audio_feature" / f"{vlog.id}.npy", streams.audio.astype(np.float32)
        )
        header, table = openface_table(streams, vlog_rng)
        sub = "Video_feature/part2" if i % 2 else "Video_feature"  # the release nests some
        path = root / sub / f"{vlog.id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            np.savetxt(
                handle, table, fmt=_OPENFACE_FORMATS, delimiter=", ", header=header, comments=""
            )
        write_text_atomic(root / "label" / f"{vlog.id}{LABEL_SUFFIX}", f"{vlog.label}\r\n")
    write_text_atomic(root / "split.csv", _split_lines(plan))


WRITERS = {"dvlog": write_dvlog, "lmvd": write_lmvd, "lmvd-release": write_lmvd_release}
