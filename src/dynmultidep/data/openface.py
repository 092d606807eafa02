"""Named feature sets from OpenFace 2.x per-frame CSV files, as LMVD releases them.

An OpenFace CSV has one row per video frame and hundreds of columns separated
by ``", "``, in this order::

    frame, face_id, timestamp, confidence, success,
    gaze_0_x .. gaze_angle_y, eye_lmk_x_0 .., eye_lmk_X_0 ..,
    pose_Tx .. pose_Rz, x_0..x_67, y_0..y_67, X_0.., Y_0.., Z_0.., p_*,
    AU01_r .. AU45_r, AU01_c .. AU45_c

A visual feature set is a tuple of those column names (:data:`VISUAL_SETS`),
taken by exact name (``eye_lmk_x_0`` and the 3-D ``X_0`` are other quantities
than the 2-D landmark ``x_0``):

===========  ====  ===========================================================
set          D     columns, in OpenFace's order, and their values
===========  ====  ===========================================================
landmarks    136   ``x_0..x_67, y_0..y_67``, pixels; prepared rows are
                   standardised across these 136 values (:func:`standardize_rows`)
aus          35    ``AU01_r..AU45_r`` (17 intensities, 0..5), then
                   ``AU01_c..AU45_c`` (18 presences, 0 or 1), as written
gaze         8     ``gaze_0_x..gaze_1_z`` (unit vectors of the two eyes), then
                   ``gaze_angle_x, gaze_angle_y`` (radians), as written
pose         6     ``pose_Tx, pose_Ty, pose_Tz`` (mm), ``pose_Rx, pose_Ry,
                   pose_Rz`` (radians), as written
===========  ====  ===========================================================

A prepared row is the chosen sets side by side, in the order the user named
them. A frame whose ``success`` is 0 (no face found) gives an all-zero row in
every set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from dynmultidep.errors import DataError

LANDMARK_COLUMNS = tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68))
_AU_INTENSITIES = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
_AU_PRESENCES = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)  # + AU28
AU_COLUMNS = tuple(f"AU{n:02d}_r" for n in _AU_INTENSITIES) + tuple(
    f"AU{n:02d}_c" for n in _AU_PRESENCES
)
GAZE_COLUMNS = (
    *(f"gaze_{eye}_{axis}" for eye in (0, 1) for axis in "xyz"),
    "gaze_angle_x",
    "gaze_angle_y",
)
POSE_COLUMNS = ("pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")
VISUAL_SETS: dict[str, tuple[str, ...]] = {
    "landmarks": LANDMARK_COLUMNS,
    "aus": AU_COLUMNS,
    "gaze": GAZE_COLUMNS,
    "pose": POSE_COLUMNS,
}
DEFAULT_SETS = ("landmarks",)
ROW_STANDARDIZED = frozenset({"landmarks"})  # sets standardised across their values per row
FRAMES_PER_STEP = 30  # keep frames 1, 31, 61, ...: about 1 Hz for 30 fps video


def parse_visual_sets(sets: str | Iterable[str]) -> tuple[str, ...]:
    """``"landmarks,gaze"`` (or a sequence of names) -> ``("landmarks", "gaze")``.

    Raises:
        ValueError: an unknown or repeated name, or no name at all.
    """
    names = sets.split(",") if isinstance(sets, str) else list(sets)
    names = [name.strip() for name in names if name.strip()]
    valid = ", ".join(VISUAL_SETS)
    unknown = [name for name in names if name not in VISUAL_SETS]
    if unknown:
        raise ValueError(f"unknown visual feature set(s) {', '.join(unknown)}; valid: {valid}")
    if not names:
        raise ValueError(f"no visual feature set given; valid: {valid}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"visual feature set(s) named twice: {', '.join(repeated)}")
    return tuple(names)


def visual_columns(sets: Sequence[str]) -> tuple[str, ...]:
    """The column names of ``sets`` side by side, in the given order."""
    return tuple(column for name in parse_visual_sets(sets) for column in VISUAL_SETS[name])


def sets_of_columns(columns: Sequence[str]) -> tuple[str, ...] | None:
    """The sets whose columns, side by side, are ``columns``; ``None`` if there are none."""
    columns, found = tuple(columns), []
    while columns:
        name = next((n for n, cols in VISUAL_SETS.items() if columns[: len(cols)] == cols), None)
        if name is None:
            return None
        found.append(name)
        columns = columns[len(VISUAL_SETS[name]) :]
    return tuple(found) or None


def describe_columns(columns: Sequence[str]) -> str:
    """A short name for visual columns: ``"landmarks, gaze (144 columns)"``."""
    columns = tuple(columns)
    sets = sets_of_columns(columns)
    if sets is not None:
        return f"{', '.join(sets)} ({len(columns)} columns)"
    if not columns:
        return "no columns"
    return f"{len(columns)} columns {columns[0]}..{columns[-1]}"


def _list_missing(missing: Sequence[str], shown: int = 5) -> str:
    more = len(missing) - shown
    return ", ".join(missing[:shown]) + (f" and {more} more" if more > 0 else "")


def read_openface(
    path: str | Path, columns: Sequence[str], every: int = FRAMES_PER_STEP
) -> np.ndarray:
    """``(T, len(columns))`` float64 values of the frames with ``(frame - 1) % every == 0``.

    The file is read line by line and checked strictly: every line must have
    the header's number of fields and numbers in the chosen columns. A frame
    whose ``success`` is 0 gives an all-zero row. Where a frame has several
    rows (several faces), the first is kept.

    Raises:
        DataError: unreadable file, a missing column (all of them named), a bad
            line, no frame kept, or NaN/Inf in the chosen columns.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8", errors="strict")
    except OSError as err:
        raise DataError(path, f"cannot open OpenFace CSV ({err.strerror})") from None
    with handle:
        try:
            names = [name.strip() for name in handle.readline().split(",")]
            missing = [c for c in ("frame", *columns) if c not in names]
            if missing:
                raise DataError(path, f"lacks the OpenFace column(s) {_list_missing(missing)}")
            frame_at = names.index("frame")
            success_at = names.index("success") if "success" in names else None
            chosen = [names.index(c) for c in columns]
            rows: list[list[float]] = []
            last_frame = None
            for line_number, line in enumerate(handle, start=2):
                if not line.strip():
                    continue
                fields = line.split(",")
                if len(fields) != len(names):
                    raise DataError(
                        path, f"line {line_number}: {len(fields)} fields, expected {len(names)}"
                    )
                try:
                    frame = int(float(fields[frame_at]))
                    if (frame - 1) % every or frame == last_frame:
                        continue
                    last_frame = frame
                    if success_at is not None and float(fields[success_at]) == 0:
                        rows.append([0.0] * len(chosen))
                    else:
                        rows.append([float(fields[i]) for i in chosen])
                except ValueError as err:
                    raise DataError(path, f"line {line_number}: {err}") from None
        except UnicodeDecodeError as err:
            raise DataError(path, f"not UTF-8 text ({err.reason})") from None
    if not rows:
        raise DataError(path, f"no frame with (frame - 1) % {every} == 0")
    values = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(chosen))
    if not np.isfinite(values).all():
        raise DataError(path, "the chosen OpenFace columns hold NaN or Inf")
    return values


def read_landmarks(path: str | Path, every: int = FRAMES_PER_STEP) -> np.ndarray:
    """``(T, 136)`` float64 landmarks in ``x_0..x_67, y_0..y_67`` order (see
    :func:`read_openface`)."""
    return read_openface(path, LANDMARK_COLUMNS, every)


def read_visual_sets(
    path: str | Path, sets: Sequence[str] = DEFAULT_SETS, every: int = FRAMES_PER_STEP
) -> np.ndarray:
    """``(T, D)`` float32 prepared rows of ``sets``: the sets side by side in the given
    order, ``landmarks`` standardised across its 136 values, the others as written."""
    sets = parse_visual_sets(sets)
    values = read_openface(path, visual_columns(sets), every)
    blocks, start = [], 0
    for name in sets:
        block = values[:, start : start + len(VISUAL_SETS[name])]
        blocks.append(standardize_rows(block) if name in ROW_STANDARDIZED else block)
        start += block.shape[1]
    return np.hstack(blocks).astype(np.float32)


def standardize_rows(rows: np.ndarray) -> np.ndarray:
    """Standardise each row across its values: ``(row - mean) / std`` with the
    population std. A constant row, such as an all-zero no-face row, becomes 0.
    """
    rows = np.asarray(rows, dtype=np.float64)
    mean = rows.mean(axis=1, keepdims=True)
    std = rows.std(axis=1, keepdims=True)
    centred = rows - mean
    constant = std <= 1e-10 * (1.0 + np.abs(mean))
    return np.divide(centred, std, out=np.zeros_like(centred), where=~constant)
