"""Facial landmarks from OpenFace per-frame CSV files, as LMVD releases them.

An OpenFace CSV has one row per video frame and hundreds of columns separated
by ``", "`` (``frame, face_id, timestamp, confidence, success, gaze_*,
eye_lmk_*, pose_*, x_0..x_67, y_0..y_67, X_0.., AU*_r, AU*_c``). Only the 2-D
landmark columns named exactly ``x_i``/``y_i`` are taken (``eye_lmk_x_0`` and
the 3-D ``X_0`` are other quantities).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dynmultidep.errors import DataError

LANDMARK_COLUMNS = tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68))
FRAMES_PER_STEP = 30  # keep frames 1, 31, 61, ...: about 1 Hz for 30 fps video


def read_landmarks(path: str | Path, every: int = FRAMES_PER_STEP) -> np.ndarray:
    """``(T, 136)`` float64 landmarks of the frames with ``(frame - 1) % every == 0``.

    Rows are in ``x_0..x_67, y_0..y_67`` order. A frame whose ``success`` is 0
    gives an all-zero row. Where a frame has several rows (several faces), the
    first is kept.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8", errors="strict")
    except OSError as err:
        raise DataError(path, f"cannot open OpenFace CSV ({err.strerror})") from None
    with handle:
        try:
            names = [name.strip() for name in handle.readline().split(",")]
            missing = [c for c in ("frame", *LANDMARK_COLUMNS) if c not in names]
            if missing:
                raise DataError(
                    path, f"not an OpenFace landmark CSV: no column(s) {', '.join(missing[:3])}"
                )
            frame_at = names.index("frame")
            success_at = names.index("success") if "success" in names else None
            columns = [names.index(c) for c in LANDMARK_COLUMNS]
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
                        rows.append([0.0] * len(columns))
                    else:
                        rows.append([float(fields[i]) for i in columns])
                except ValueError as err:
                    raise DataError(path, f"line {line_number}: {err}") from None
        except UnicodeDecodeError as err:
            raise DataError(path, f"not UTF-8 text ({err.reason})") from None
    if not rows:
        raise DataError(path, f"no frame with (frame - 1) % {every} == 0")
    landmarks = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(landmarks).all():
        raise DataError(path, "landmark columns hold NaN or Inf")
    return landmarks


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
