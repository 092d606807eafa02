"""D-Vlog's acoustic features: openSMILE's eGeMAPS v02 low-level descriptors,
one row per step.

openSMILE computes the 25 descriptors every 10 ms; a step's row is the mean of
the frames that start inside it. The 15 ``*_sma3nz`` descriptors (F0, jitter,
shimmer, HNR, formants, ...) are defined on voiced frames only and are 0 in
unvoiced ones. ``unvoiced`` says how a step averages them:

* ``exclude`` (default): the mean over the step's frames where the descriptor is
  non-zero, as openSMILE's own ``nz`` functionals do; 0 where the step has none
  (a silent or unvoiced second), which keeps the release's convention;
* ``include``: the plain mean over all frames, zeros included (pitch and the
  fraction of voiced frames mixed in one number).

openSMILE is licensed for research and education only (audEERING's licence).
"""

from __future__ import annotations

import numpy as np

from dynmultidep.features import import_extra
from dynmultidep.features.media import SAMPLE_RATE

UNVOICED = ("exclude", "include")
DESCRIPTORS = (
    "Loudness_sma3",
    "alphaRatio_sma3",
    "hammarbergIndex_sma3",
    "slope0-500_sma3",
    "slope500-1500_sma3",
    "spectralFlux_sma3",
    "mfcc1_sma3",
    "mfcc2_sma3",
    "mfcc3_sma3",
    "mfcc4_sma3",
    "F0semitoneFrom27.5Hz_sma3nz",
    "jitterLocal_sma3nz",
    "shimmerLocaldB_sma3nz",
    "HNRdBACF_sma3nz",
    "logRelF0-H1-H2_sma3nz",
    "logRelF0-H1-A3_sma3nz",
    "F1frequency_sma3nz",
    "F1bandwidth_sma3nz",
    "F1amplitudeLogRelF0_sma3nz",
    "F2frequency_sma3nz",
    "F2bandwidth_sma3nz",
    "F2amplitudeLogRelF0_sma3nz",
    "F3frequency_sma3nz",
    "F3bandwidth_sma3nz",
    "F3amplitudeLogRelF0_sma3nz",
)  # fmt: skip  (the release's column order)


def _smile():
    opensmile = import_extra("opensmile")
    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
    )


class EgemapsExtractor:
    """openSMILE's eGeMAPS LLD frames of 16 kHz mono audio (:func:`aggregate_steps`
    turns them into steps)."""

    def __init__(self):
        self.smile = _smile()

    def frames(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """openSMILE's output: ``(F,)`` frame start times in seconds and ``(F, 25)``
        float64 descriptors in :data:`DESCRIPTORS` order."""
        table = self.smile.process_signal(samples, SAMPLE_RATE)
        if tuple(table.columns) != DESCRIPTORS:
            raise RuntimeError(f"openSMILE returned unexpected columns {list(table.columns)[:3]}")
        starts = table.index.get_level_values("start").total_seconds().to_numpy()
        return starts, table.to_numpy(dtype=np.float64)


def aggregate_steps(
    starts: np.ndarray, values: np.ndarray, steps: int, rate: float, unvoiced: str
) -> np.ndarray:
    """Mean of the frames starting in each step (``(F,)`` and ``(F, D)`` -> ``(steps, D)``).

    With ``unvoiced="exclude"`` the ``*_sma3nz`` columns average their non-zero
    frames only. A step with no frame to average is 0.
    """
    step_of = np.floor(starts * rate + 1e-9).astype(np.int64)
    inside = (step_of >= 0) & (step_of < steps)
    step_of, values = step_of[inside], values[inside]
    weights = np.ones_like(values)
    if unvoiced == "exclude":
        voiced_only = np.array([name.endswith("_sma3nz") for name in DESCRIPTORS])
        weights[:, voiced_only] = values[:, voiced_only] != 0
    sums = np.zeros((steps, values.shape[1]))
    counts = np.zeros((steps, values.shape[1]))
    np.add.at(sums, step_of, values * weights)
    np.add.at(counts, step_of, weights)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
