"""Frame-level features to one step per second, D-Vlog's rate.

Step ``s`` is the mean of the valid frames with ``s <= time < s + 1``; a second
without a valid frame is a row of zeros (D-Vlog's convention for a second without a
face). Validity is per frame: COVAREP's unvoiced frames for the voice-quality columns,
OpenFace's and CLNF's frames without a face (``success = 0``), scrubbed (all-zero) rows.
"""

from __future__ import annotations

import numpy as np


def per_second(times: np.ndarray, values: np.ndarray, valid: np.ndarray, steps: int) -> np.ndarray:
    """``(steps, D)`` float32 means of ``values (F, D)`` per second.

    ``times (F,)`` in seconds; ``valid (F,)`` bool: the frames that count. Frames past
    ``steps`` seconds (or before 0) are left out.
    """
    second = np.floor(times).astype(np.int64)
    keep = valid & (second >= 0) & (second < steps)
    second, kept = second[keep], values[keep]
    if second.size and np.any(np.diff(second) < 0):  # timestamps out of order
        order = np.argsort(second, kind="stable")
        second, kept = second[order], kept[order]
    out = np.zeros((steps, values.shape[1]), np.float64)
    if second.size:
        starts = np.concatenate([[0], np.flatnonzero(np.diff(second)) + 1])
        counts = np.diff(np.append(starts, second.size))
        out[second[starts]] = np.add.reduceat(kept, starts, axis=0) / counts[:, None]
    return out.astype(np.float32)
