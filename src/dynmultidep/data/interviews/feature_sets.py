"""The feature sets of each release, per modality, and how each becomes steps of 1 s.

================  =====  ========  ===============================================
corpus / set      D      rate      file, columns, valid frames
================  =====  ========  ===============================================
DAIC-WOZ audio
``covarep``       74     100 Hz    ``{id}_COVAREP.csv`` (no header): F0, VUV, NAQ, QOQ,
                                   H1H2, PSP, MDQ, peakSlope, Rd, Rd_conf, creak,
                                   MCEP_0..24, HMPDM_0..24, HMPDD_0..12. Scrubbed
                                   (all-zero) frames never count; the voice-quality
                                   columns (F0 .. creak, not VUV) count voiced frames
                                   (VUV = 1) only, so VUV's mean is the voiced share
``formant``       5      100 Hz    ``{id}_FORMANT.csv`` (no header): F1..F5; all-zero
                                   frames do not count
DAIC-WOZ visual (CLNF, about 30 fps, ``frame, timestamp, confidence, success`` first;
frames with ``success = 0`` do not count)
``landmarks``     136    30 Hz     ``{id}_CLNF_features.txt``: x0..x67, y0..y67 (pixels)
``aus``           20     30 Hz     ``{id}_CLNF_AUs.txt`` (or ``.csv``): 14 intensities,
                                   6 presences
``gaze``          12     30 Hz     ``{id}_CLNF_gaze.txt``: two eyes' gaze vectors in
                                   camera and head coordinates
``pose``          6      30 Hz     ``{id}_CLNF_pose.txt``: Tx, Ty, Tz (mm), Rx, Ry, Rz
E-DAIC audio (openSMILE: ``;``, ``name;frameTime;`` first; Deep Spectrum at 1 Hz)
``egemaps``       23     100 Hz    ``{id}_OpenSMILE2.3.0_egemaps.csv``: eGeMAPS LLDs
``mfcc``          39     100 Hz    ``{id}_OpenSMILE2.3.0_mfcc.csv``: MFCC 1-13, deltas,
                                   delta-deltas
``densenet201``   1920   1 Hz      ``{id}_densenet201.csv``: Deep Spectrum (its
                                   separator differs between copies: detected)
``vgg16``         4096   1 Hz      ``{id}_vgg16.csv``: Deep Spectrum
E-DAIC visual (``{id}_OpenFace2.1.0_Pose_gaze_AUs.csv``, ``success = 0`` frames do not
count)
``pose``          6      30 Hz     pose_Tx .. pose_Rz
``gaze``          8      30 Hz     gaze_0_x .. gaze_1_z, gaze_angle_x, gaze_angle_y
``aus``           35     30 Hz     AU01_r .. AU45_r, AU01_c .. AU45_c
================  =====  ========  ===============================================

A modality's row is its chosen sets side by side, in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dynmultidep.data.interviews.release import Session
from dynmultidep.data.interviews.seconds import per_second
from dynmultidep.data.interviews.tables import parse_table
from dynmultidep.data.openface import AU_COLUMNS, GAZE_COLUMNS, POSE_COLUMNS
from dynmultidep.errors import DataError

MODALITIES = ("audio", "visual")
COVAREP_VOICE_QUALITY = ("F0", "NAQ", "QOQ", "H1H2", "PSP", "MDQ", "peakSlope", "Rd",
                         "Rd_conf", "creak")  # fmt: skip
COVAREP_COLUMNS = (
    "F0", "VUV", *COVAREP_VOICE_QUALITY[1:],
    *(f"MCEP_{i}" for i in range(25)), *(f"HMPDM_{i}" for i in range(25)),
    *(f"HMPDD_{i}" for i in range(13)),
)  # fmt: skip
FRAME_META = ("frame", "timestamp", "confidence", "success")
CLNF_AU_COLUMNS = (
    *(f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 9, 10, 12, 14, 15, 17, 20, 25, 26)),
    *(f"AU{n:02d}_c" for n in (4, 12, 15, 23, 28, 45)),
)
CLNF_GAZE_COLUMNS = tuple(f"{axis}_{eye}" for eye in ("0", "1", "h0", "h1") for axis in "xyz")
CLNF_POSE_COLUMNS = ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")
CLNF_LANDMARK_COLUMNS = tuple(f"x{i}" for i in range(68)) + tuple(f"y{i}" for i in range(68))
AUDIO_RATE = 100.0  # frames per second of COVAREP, formants and openSMILE


@dataclass(frozen=True)
class FeatureSet:
    """One feature set of a release: where it is and what its columns are."""

    name: str
    modality: str  # "audio" or "visual"
    files: tuple[str, ...]  # file name templates ({id}); the first the session has is read
    columns: tuple[str, ...]
    layout: str  # "covarep", "headerless", "frames" (CLNF, OpenFace), "opensmile", "per_second"

    def file_names(self, session_id: str) -> tuple[str, ...]:
        return tuple(f.format(id=session_id) for f in self.files)

    def seconds(self, session: Session, files: dict[str, bytes]) -> np.ndarray:
        """``(S, D)`` float32: this set of ``session`` per second, from its ``files``
        (``{name: bytes}``, what :meth:`Session.read` gave); ``S`` covers its last frame."""
        name = next((n for n in self.file_names(session.id) if n in files), None)
        if name is None:
            raise DataError(session.where(self.file_names(session.id)[0]),
                            f"missing: session {session.id} has no {self.name} file")  # fmt: skip
        where = session.where(name)
        return _READERS[self.layout](self, files[name], where)


def _steps(times: np.ndarray) -> int:
    return int(np.floor(times.max())) + 1 if times.size else 0


def _headerless(data: bytes, where, columns: tuple[str, ...]) -> np.ndarray:
    table = parse_table(data, where, ",", header=False)
    if table.rows.shape[1] != len(columns):
        raise DataError(where, f"has {table.rows.shape[1]} columns, expected {len(columns)}")
    return table.rows


def _covarep(fs: FeatureSet, data: bytes, where) -> np.ndarray:
    rows = _headerless(data, where, fs.columns)
    times = np.arange(len(rows)) / AUDIO_RATE
    kept = np.isfinite(rows).all(1) & (rows != 0).any(1)  # scrubbed frames are all zero
    voiced = kept & (rows[:, fs.columns.index("VUV")] == 1)
    steps = _steps(times)
    out = per_second(times, rows, kept, steps)
    quality = [fs.columns.index(c) for c in COVAREP_VOICE_QUALITY]
    out[:, quality] = per_second(times, rows[:, quality], voiced, steps)
    return out


def _headerless_frames(fs: FeatureSet, data: bytes, where) -> np.ndarray:
    rows = _headerless(data, where, fs.columns)
    times = np.arange(len(rows)) / AUDIO_RATE
    kept = np.isfinite(rows).all(1) & (rows != 0).any(1)
    return per_second(times, rows, kept, _steps(times))


def _frames(fs: FeatureSet, data: bytes, where) -> np.ndarray:
    table = parse_table(data, where, ",", header=True)
    meta = table.columns(FRAME_META, where)
    values = table.columns(fs.columns, where)
    kept = (meta[:, 3] == 1) & np.isfinite(values).all(1)
    return per_second(meta[:, 1], values, kept, _steps(meta[:, 1]))


def _opensmile(fs: FeatureSet, data: bytes, where) -> np.ndarray:
    table = parse_table(data, where, ";", header=True, skip=1)  # drops ``name``
    if table.rows.shape[1] != len(fs.columns) + 1:
        raise DataError(where, f"has {table.rows.shape[1] - 1} features per frame, "
                               f"expected {len(fs.columns)}")  # fmt: skip
    times, values = table.rows[:, 0], table.rows[:, 1:]
    return per_second(times, values, np.isfinite(values).all(1), _steps(times))


def _per_second(fs: FeatureSet, data: bytes, where) -> np.ndarray:
    """Deep Spectrum: one row per second already; leading text or time columns dropped."""
    first = data[: data.find(b"\n")].decode("utf-8", "replace")
    fields = first.replace(";", ",").replace("\t", ",").split(",")
    header = not _is_number(fields[-1])
    skip = len(fields) - len(fs.columns)
    if skip < 0:
        raise DataError(where, f"has {len(fields)} columns, expected {len(fs.columns)}")
    rows = parse_table(data, where, None, header=header, skip=skip).rows
    return np.where(np.isfinite(rows), rows, 0).astype(np.float32)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_READERS = {
    "covarep": _covarep,
    "headerless": _headerless_frames,
    "frames": _frames,
    "opensmile": _opensmile,
    "per_second": _per_second,
}

EGEMAPS_COLUMNS = (
    "Loudness_sma3", "alphaRatio_sma3", "hammarbergIndex_sma3", "slope0-500_sma3",
    "slope500-1500_sma3", "spectralFlux_sma3", "mfcc1_sma3", "mfcc2_sma3", "mfcc3_sma3",
    "mfcc4_sma3", "F0semitoneFrom27.5Hz_sma3nz", "jitterLocal_sma3nz",
    "shimmerLocaldB_sma3nz", "HNRdBACF_sma3nz", "logRelF0-H1-H2_sma3nz",
    "logRelF0-H1-A3_sma3nz", "F1frequency_sma3nz", "F1bandwidth_sma3nz",
    "F1amplitudeLogRelF0_sma3nz", "F2frequency_sma3nz", "F2amplitudeLogRelF0_sma3nz",
    "F3frequency_sma3nz", "F3amplitudeLogRelF0_sma3nz",
)  # fmt: skip
MFCC_COLUMNS = tuple(
    f"pcm_fftMag_mfcc{suffix}[{i}]" for suffix in ("", "_de", "_de_de") for i in range(1, 14)
)
EDAIC_OPENFACE = ("{id}_OpenFace2.1.0_Pose_gaze_AUs.csv",)

FEATURE_SETS: dict[str, dict[str, FeatureSet]] = {
    "daic_woz": {
        fs.name: fs
        for fs in (
            FeatureSet("covarep", "audio", ("{id}_COVAREP.csv",), COVAREP_COLUMNS, "covarep"),
            FeatureSet(
                "formant",
                "audio",
                ("{id}_FORMANT.csv",),
                tuple(f"F{i}" for i in range(1, 6)),
                "headerless",
            ),
            FeatureSet(
                "landmarks", "visual", ("{id}_CLNF_features.txt",), CLNF_LANDMARK_COLUMNS, "frames"
            ),
            FeatureSet(
                "aus",
                "visual",
                ("{id}_CLNF_AUs.txt", "{id}_CLNF_AUs.csv"),
                CLNF_AU_COLUMNS,
                "frames",
            ),
            FeatureSet("gaze", "visual", ("{id}_CLNF_gaze.txt",), CLNF_GAZE_COLUMNS, "frames"),
            FeatureSet("pose", "visual", ("{id}_CLNF_pose.txt",), CLNF_POSE_COLUMNS, "frames"),
        )  # fmt: skip
    },
    "edaic": {
        fs.name: fs
        for fs in (
            FeatureSet(
                "egemaps",
                "audio",
                ("{id}_OpenSMILE2.3.0_egemaps.csv",),
                EGEMAPS_COLUMNS,
                "opensmile",
            ),
            FeatureSet(
                "mfcc", "audio", ("{id}_OpenSMILE2.3.0_mfcc.csv",), MFCC_COLUMNS, "opensmile"
            ),
            FeatureSet(
                "densenet201",
                "audio",
                ("{id}_densenet201.csv",),
                tuple(f"densenet201_{i}" for i in range(1920)),
                "per_second",
            ),
            FeatureSet(
                "vgg16",
                "audio",
                ("{id}_vgg16.csv",),
                tuple(f"vgg16_{i}" for i in range(4096)),
                "per_second",
            ),
            FeatureSet("pose", "visual", EDAIC_OPENFACE, POSE_COLUMNS, "frames"),
            FeatureSet("gaze", "visual", EDAIC_OPENFACE, GAZE_COLUMNS, "frames"),
            FeatureSet("aus", "visual", EDAIC_OPENFACE, AU_COLUMNS, "frames"),
        )  # fmt: skip
    },
}


def parse_sets(corpus: str, modality: str, sets: str | Iterable[str]) -> tuple[FeatureSet, ...]:
    """``"aus,pose"`` (or a sequence of names) -> the feature sets of ``corpus``'s
    ``modality``, in that order.

    Raises:
        ValueError: an unknown, repeated or wrong-modality name, or none at all.
    """
    names = sets.split(",") if isinstance(sets, str) else [str(s) for s in sets]
    names = [name.strip() for name in names if name.strip()]
    known = [fs.name for fs in FEATURE_SETS[corpus].values() if fs.modality == modality]
    unknown = [name for name in names if name not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"{corpus} {modality} feature sets must be distinct names among "
            f"{', '.join(known)}; got {', '.join(names) or 'none'}"
        )
    return tuple(FEATURE_SETS[corpus][name] for name in names)


def set_columns(sets: Iterable[FeatureSet]) -> tuple[str, ...]:
    """The columns of ``sets`` side by side, each prefixed with its set's name."""
    return tuple(f"{fs.name}:{c}" for fs in sets for c in fs.columns)


def column_sets(columns: Iterable[str]) -> tuple[str, ...]:
    """The names of the sets that prefixed ``columns`` hold, in order (``set_columns``'s
    inverse, ``covarep:F0 ... -> ("covarep", ...)``)."""
    return tuple(dict.fromkeys(str(c).split(":", 1)[0] for c in columns))


__all__ = ["FEATURE_SETS", "FeatureSet", "column_sets", "parse_sets", "set_columns"]
