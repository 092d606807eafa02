"""Loading the features of listed vlogs into memory, aligned in time.

Both corpora are small (D-Vlog is about 370 MB as float32), so every vlog is
read once and kept in memory for the whole run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dynmultidep.data.arrays import load_features
from dynmultidep.data.records import Record
from dynmultidep.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Vlog:
    """One vlog's features, both modalities truncated to the same length T."""

    id: str
    label: int
    gender: str | None
    audio: np.ndarray  # (T, Da) float32
    video: np.ndarray  # (T, Dv) float32; an all-zero row is a frame with no face, not padding
    score: float | None = None  # PHQ-8 total where the corpus gives one

    @property
    def length(self) -> int:
        return self.audio.shape[0]


def load_vlogs(
    records: Sequence[Record], audio_dim: int, video_dim: int, index_name: str = "labels.csv"
) -> list[Vlog]:
    """Read and validate the arrays of ``records``.

    Modalities of different length are cut to the shorter one (as public
    loaders of both corpora do), with one summary warning for the whole set.
    """
    vlogs = []
    differences = []
    for record in records:
        for path in (record.audio_path, record.video_path):
            if not path.is_file():
                raise DataError(
                    path,
                    f"missing: vlog {record.id!r} is listed in {index_name} but has no such file",
                )
        audio = load_features(record.audio_path, audio_dim)
        video = load_features(record.video_path, video_dim)
        length = min(len(audio), len(video))
        if len(audio) != len(video):
            differences.append(abs(len(audio) - len(video)))
            audio, video = audio[:length].copy(), video[:length].copy()
        vlogs.append(Vlog(record.id, record.label, record.gender, audio, video, record.score))
    if differences:
        log.warning(
            "%d of %d vlogs have audio and video of different lengths "
            "(by %d to %d steps); both modalities were truncated to the shorter",
            len(differences),
            len(records),
            min(differences),
            max(differences),
        )
    return vlogs
