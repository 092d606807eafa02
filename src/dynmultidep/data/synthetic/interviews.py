"""Synthetic twins of DAIC-WOZ and E-DAIC in their released layouts, zipped or unpacked.

Each session gets a PHQ-8 score, and its frame-level features follow a handful of
per-second behavioural channels (:func:`draw_channels`) that move with the score:
fewer voiced frames and a flatter pitch, quieter speech, less smiling and more
frowning, gaze and head turned down. A per-session baseline and slow drifts hide
them partly, so severity has to be read from many seconds. The files are written at
the releases' rates (100 Hz audio, 30 fps video) with the releases' quirks:
unvoiced and scrubbed audio frames, frames without a face, a session whose video
ends early, one with no interviewer lines, a binary label that disagrees with its
score, a missing PHQ-8 item, and (DAIC-WOZ) an unlabelled AVEC 2017 test split beside
the labelled ``full_test_split.csv``.
"""

from __future__ import annotations

import functools
import io
import tarfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynmultidep.data.interviews.feature_sets import (
    CLNF_AU_COLUMNS,
    CLNF_GAZE_COLUMNS,
    CLNF_LANDMARK_COLUMNS,
    CLNF_POSE_COLUMNS,
    COVAREP_COLUMNS,
    EGEMAPS_COLUMNS,
    MFCC_COLUMNS,
)
from dynmultidep.data.interviews.quirks import EXCLUDED
from dynmultidep.data.openface import AU_COLUMNS, GAZE_COLUMNS, POSE_COLUMNS

FILES = ("archives", "folders")
TWIN_VERSION = 1  # bump when the files a spec produces change
FPS = 30.0
AUDIO_RATE = 100
# sessions per fold (train, dev, test) and depressed share, as released
COUNTS = {"daic_woz": (107, 35, 47), "edaic": (163, 56, 56)}
DEPRESSED = {"daic_woz": 0.29, "edaic": 0.32}
CHANNELS = ("voiced", "pitch_spread", "loudness", "smile", "frown", "gaze_down", "head_down")
# how far each channel moves from a score of 0 to 24, in units of its per-second noise
CUES = {"voiced": -0.5, "pitch_spread": -0.6, "loudness": -0.5, "smile": -0.7,
        "frown": 0.6, "gaze_down": 0.6, "head_down": 0.5}  # fmt: skip


@dataclass(frozen=True)
class TwinPreset:
    n: int | None  # sessions; None = the release's count
    minutes: float  # median session length


TWIN_PRESETS = {
    "full": TwinPreset(None, 15.0),  # the release's size: 15 minutes a session
    "small": TwinPreset(60, 1.0),  # trains in minutes on a CPU
    "tiny": TwinPreset(12, 0.4),  # unit tests
}


@dataclass(frozen=True)
class InterviewTwinSpec:
    """Everything an interview twin is a deterministic function of."""

    corpus: str = "daic_woz"
    preset: str = "small"
    n: int | None = None
    minutes: float | None = None
    seed: int = 0
    files: str = "archives"  # one archive per session, as released; "folders": unpacked

    def resolved(self) -> dict:
        if self.corpus not in COUNTS:
            raise ValueError(f"unknown interview corpus {self.corpus!r}; use one of "
                             f"{', '.join(COUNTS)}")  # fmt: skip
        if self.preset not in TWIN_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; use one of "
                             f"{', '.join(TWIN_PRESETS)}")  # fmt: skip
        if self.files not in FILES:
            raise ValueError(f"unknown files {self.files!r}; use one of {', '.join(FILES)}")
        preset = TWIN_PRESETS[self.preset]
        n = sum(COUNTS[self.corpus]) if (self.n or preset.n) is None else int(self.n or preset.n)
        if n < 6:
            raise ValueError(f"an interview twin needs at least 6 sessions, got n={n}")
        return {"layout": f"{self.corpus}-release", "n": n,
                "minutes": float(self.minutes or preset.minutes), "seed": int(self.seed),
                "files": self.files, "version": TWIN_VERSION}  # fmt: skip


@dataclass(frozen=True)
class TwinSession:
    id: str
    fold: str  # train, dev, test (the release's names)
    score: int
    binary: int
    gender: int  # 0 or 1
    seconds: int


def plan_sessions(spec: InterviewTwinSpec) -> list[TwinSession]:
    """Ids, folds, scores, genders and lengths, in the release's proportions."""
    resolved = spec.resolved()
    n, rng = resolved["n"], np.random.default_rng([spec.seed, 31])
    ids = [str(i) for i in range(300, 493) if str(i) not in EXCLUDED["daic_woz"]]
    if spec.corpus == "edaic":
        ids += [str(i) for i in range(600, 719)]
    ids = sorted(rng.choice(ids, n, replace=False).tolist(), key=int) if n < len(ids) else ids
    counts = np.array(COUNTS[spec.corpus], float)
    per_fold = np.floor(counts / counts.sum() * n).astype(int)
    per_fold[0] += n - per_fold.sum()
    folds = np.repeat(["train", "dev", "test"], per_fold)[rng.permutation(n)]
    sessions = []
    for i, session in enumerate(ids):
        binary = int(rng.random() < DEPRESSED[spec.corpus])
        score = int(min(24, 10 + rng.gamma(2.0, 2.5))) if binary else int(rng.integers(0, 10))
        minutes = resolved["minutes"] * float(np.clip(np.exp(rng.normal(0, 0.35)), 0.47, 2.2))
        sessions.append(TwinSession(session, str(folds[i]), score, binary,
                                    int(rng.integers(0, 2)),
                                    max(8, round(60 * minutes))))  # fmt: skip
    return sessions


def draw_channels(rng: np.random.Generator, seconds: int, score: int) -> dict[str, np.ndarray]:
    """Per-second behavioural channels ``(seconds,)``: the score's cue, a per-session
    baseline and a slow drift, in units of per-second noise."""
    severity = score / 24.0
    channels = {}
    for name in CHANNELS:
        drift = np.cumsum(rng.normal(0, 0.15, seconds))
        drift -= drift.mean()
        baseline = rng.normal(0, 0.35)
        channels[name] = CUES[name] * 2 * severity + baseline + drift + rng.normal(0, 0.5, seconds)
    return channels


def _frames(per_second: np.ndarray, rate: float, rng: np.random.Generator,
            noise: float) -> np.ndarray:  # fmt: skip
    """``(seconds * rate, D)``: each second's values at ``rate``, plus frame noise."""
    frames = np.repeat(per_second, int(rate), axis=0) if rate == int(rate) else per_second
    return frames + rng.normal(0, noise, frames.shape)


def _csv(rows: np.ndarray, header: str | None = None, sep: str = ",", lead: str = "") -> bytes:
    fmt = sep.join(["%.5g"] * rows.shape[1])
    body = "\n".join(lead + fmt % tuple(r) for r in rows.tolist())
    return ((header + "\n" if header else "") + body + "\n").encode()


def _video_meta(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """``(frames F, meta (F, 4))``: frame, timestamp, confidence, success at 30 fps, with
    3% of frames and one 3-second span without a face."""
    count = int(seconds * FPS)
    success = (rng.random(count) > 0.03).astype(float)
    lost = int(rng.integers(0, max(1, count - 90)))
    success[lost : lost + 90] = 0
    meta = np.stack([np.arange(1, count + 1), np.arange(count) / FPS,
                     np.where(success > 0, 0.9, 0.0), success], axis=1)  # fmt: skip
    return count, meta


def _per_frame(channel: np.ndarray, count: int) -> np.ndarray:
    """A per-second channel at 30 fps (``count`` frames)."""
    return np.repeat(channel, int(FPS))[:count]


def daic_files(session: TwinSession, rng: np.random.Generator, video_end: float | None,
               interviewer: bool) -> dict[str, bytes]:  # fmt: skip
    """The feature files and transcript of one DAIC-WOZ session."""
    c = draw_channels(rng, session.seconds, session.score)
    sid, seconds = session.id, session.seconds
    # COVAREP at 100 Hz: voiced frames, pitch, spectrum; a scrubbed span of zero rows
    frames = seconds * AUDIO_RATE
    voiced = rng.random(frames) < np.repeat(1 / (1 + np.exp(-c["voiced"])), AUDIO_RATE)
    covarep = rng.normal(0, 1, (frames, len(COVAREP_COLUMNS)))
    covarep[:, 0] = np.where(voiced, 120 + 15 * np.repeat(c["pitch_spread"], AUDIO_RATE)
                             * rng.normal(0, 1, frames), 0)  # fmt: skip
    covarep[:, 1] = voiced
    covarep[:, 11] += np.repeat(c["loudness"], AUDIO_RATE)  # MCEP_0: energy
    covarep[~voiced, 2:11] = 0
    scrub = int(rng.integers(0, max(1, frames - 200)))
    covarep[scrub : scrub + 200] = 0
    formant = 500 + 100 * rng.normal(0, 1, (frames, 5)) + np.arange(1, 6) * 1000
    end = seconds if video_end is None else video_end
    count, meta = _video_meta(rng, end)
    aus = np.abs(rng.normal(0.3, 0.3, (count, len(CLNF_AU_COLUMNS))))
    level = 1 + _per_frame(c["smile"], count) + rng.normal(0, 0.3, count)
    aus[:, CLNF_AU_COLUMNS.index("AU12_r")] = np.clip(level, 0, 5)
    level = 1 + _per_frame(c["frown"], count) + rng.normal(0, 0.3, count)
    aus[:, CLNF_AU_COLUMNS.index("AU04_r")] = np.clip(level, 0, 5)
    aus[:, 14:] = (aus[:, 14:] > 0.5).astype(float)
    gaze = rng.normal(0, 0.05, (count, 12)) + np.tile([0, 0.1, -1], 4)
    gaze[:, 1::3] += 0.1 * _per_frame(c["gaze_down"], count)[:, None]
    pose = rng.normal(0, 0.02, (count, 6)) + [0, 0, 600, 0, 0, 0]
    pose[:, 3] += 0.08 * _per_frame(c["head_down"], count)
    landmarks = rng.normal(0, 1.5, (count, 136)) + np.r_[np.linspace(250, 390, 68),
                                                         np.linspace(200, 330, 68)]  # fmt: skip
    failed = meta[:, 3] == 0
    for values in (aus, gaze, pose, landmarks):
        values[failed] = 0
    head = "frame, timestamp, confidence, success, "
    files = {
        f"{sid}_COVAREP.csv": _csv(covarep),
        f"{sid}_FORMANT.csv": _csv(formant),
        f"{sid}_CLNF_features.txt": _csv(np.hstack([meta, landmarks]),
                                         head + ", ".join(CLNF_LANDMARK_COLUMNS), ", "),
        f"{sid}_CLNF_AUs.txt": _csv(np.hstack([meta, aus]), head + ", ".join(CLNF_AU_COLUMNS),
                                    ", "),
        f"{sid}_CLNF_gaze.txt": _csv(np.hstack([meta, gaze]),
                                     head + ", ".join(CLNF_GAZE_COLUMNS), ", "),
        f"{sid}_CLNF_pose.txt": _csv(np.hstack([meta, pose]),
                                     head + ", ".join(CLNF_POSE_COLUMNS), ", "),
        f"{sid}_TRANSCRIPT.csv": _transcript(rng, seconds, interviewer),
    }  # fmt: skip
    return files


def _transcript(rng: np.random.Generator, seconds: int, interviewer: bool) -> bytes:
    """Alternating turns (Ellie asks, the participant answers), after a sync marker."""
    lines = ["start_time\tstop_time\tspeaker\tvalue", "0.5\t0.9\tParticipant\t<sync>"]
    t = 1.0
    while t < seconds - 2:
        if interviewer:
            ask = float(rng.uniform(1, 3))
            lines.append(f"{t:.3f}\t{t + ask:.3f}\tEllie\thow are you doing today")
            t += ask + 0.5
        answer = float(rng.uniform(2, 8))
        lines.append(f"{t:.3f}\t{min(t + answer, seconds):.3f}\tParticipant\ti'm fine")
        t += answer + float(rng.uniform(0.5, 3))
    return ("\n".join(lines) + "\n").encode()


def edaic_files(session: TwinSession, rng: np.random.Generator) -> dict[str, bytes]:
    """The feature files and transcript of one E-DAIC session (under ``features/``)."""
    c = draw_channels(rng, session.seconds, session.score)
    sid, seconds = session.id, session.seconds
    frames = seconds * AUDIO_RATE
    times = np.arange(frames) / AUDIO_RATE
    egemaps = rng.normal(0, 1, (frames, len(EGEMAPS_COLUMNS)))
    egemaps[:, 0] += 1 + np.repeat(c["loudness"], AUDIO_RATE)
    voiced = rng.random(frames) < np.repeat(1 / (1 + np.exp(-c["voiced"])), AUDIO_RATE)
    egemaps[:, 10] = np.where(voiced, 30 + 3 * np.repeat(c["pitch_spread"], AUDIO_RATE)
                              * rng.normal(0, 1, frames), 0)  # fmt: skip
    mfcc = rng.normal(0, 1, (frames, len(MFCC_COLUMNS)))
    mfcc[:, 0] += np.repeat(c["loudness"], AUDIO_RATE)
    count, meta = _video_meta(rng, seconds)
    pose = rng.normal(0, 0.02, (count, 6)) + [0, 0, 600, 0, 0, 0]
    pose[:, 3] += 0.08 * _per_frame(c["head_down"], count)
    gaze = rng.normal(0, 0.05, (count, 8)) + [0, 0.1, -1, 0, 0.1, -1, 0, 0.1]
    gaze[:, [1, 4, 7]] += 0.1 * _per_frame(c["gaze_down"], count)[:, None]
    aus = np.abs(rng.normal(0.3, 0.3, (count, len(AU_COLUMNS))))
    aus[:, AU_COLUMNS.index("AU12_r")] = np.clip(1 + _per_frame(c["smile"], count), 0, 5)
    aus[:, AU_COLUMNS.index("AU04_r")] = np.clip(1 + _per_frame(c["frown"], count), 0, 5)
    aus[:, 17:] = (aus[:, 17:] > 0.5).astype(float)
    openface = np.hstack([pose, gaze, aus])
    openface[meta[:, 3] == 0] = 0
    deep = rng.normal(0, 1, (seconds, 1920)) * 0.1
    deep[:, :8] += np.stack([c[name] for name in CHANNELS[:4]] * 2, axis=1)
    smile = "name;frameTime;"
    feats = f"{sid}_P/features/{sid}"
    head = ", ".join(("frame", "timestamp", "confidence", "success", *POSE_COLUMNS,
                      *GAZE_COLUMNS, *AU_COLUMNS))  # fmt: skip
    return {
        f"{feats}_OpenSMILE2.3.0_egemaps.csv": _csv(np.column_stack([times, egemaps]),
                                                   smile + ";".join(EGEMAPS_COLUMNS), ";",
                                                   "'unknown';"),
        f"{feats}_OpenSMILE2.3.0_mfcc.csv": _csv(np.column_stack([times, mfcc]),
                                                smile + ";".join(MFCC_COLUMNS), ";",
                                                "'unknown';"),
        f"{feats}_OpenFace2.1.0_Pose_gaze_AUs.csv": _csv(np.hstack([meta, openface]), head,
                                                         ", "),
        f"{feats}_densenet201.csv": _csv(np.column_stack([np.arange(seconds), deep]),
                                         None, ";" if int(sid) % 2 else ",", "file.wav;"
                                         if int(sid) % 2 else "file.wav,"),
        f"{sid}_P/{sid}_Transcript.csv": b"Start_Time,End_Time,Text,Confidence\n"
                                          b"1.0,3.5,i'm fine,0.93\n",
    }  # fmt: skip


def write_twin(spec: InterviewTwinSpec, folder: Path, workers: int = 1) -> list[TwinSession]:
    """Write the twin of ``spec`` into ``folder`` (empty): sessions, then split files.

    ``workers`` processes write the sessions; each session's draws depend on its id
    and the seed alone, so the twin is the same for any ``workers``.
    """
    sessions = plan_sessions(spec)
    rng = np.random.default_rng([spec.seed, 37])
    quirks = rng.permutation(len(sessions))
    early = sessions[quirks[0]].id  # its video ends early
    silent = sessions[quirks[1]].id  # no interviewer lines
    write = functools.partial(_write_session, spec, folder, early, silent)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(write, sessions))
    else:
        list(map(write, sessions))
    _write_splits(folder, spec.corpus, sessions, rng)
    return sessions


def _write_session(spec: InterviewTwinSpec, folder: Path, early: str, silent: str,
                   session: TwinSession) -> None:  # fmt: skip
    """Draw one session's files and write them, packed or unpacked."""
    sid = session.id
    rng = np.random.default_rng([spec.seed, 41, int(sid)])
    if spec.corpus == "daic_woz":
        end = session.seconds - min(120, max(10, session.seconds // 5))
        files = daic_files(session, rng, end if sid == early else None, sid != silent)
    else:
        files = edaic_files(session, rng)
    if spec.files != "archives":
        for name, data in files.items():
            path = folder / (name if spec.corpus == "edaic" else f"{sid}_P/{name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    elif spec.corpus == "daic_woz":  # DAIC-WOZ: members at the zip's root
        with zipfile.ZipFile(
            folder / f"{sid}_P.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1
        ) as z:
            for name, data in files.items():
                z.writestr(name, data)
    else:  # E-DAIC: a {id}_P/ folder inside a .tar.gz
        with tarfile.open(folder / f"{sid}_P.tar.gz", "w:gz", compresslevel=1) as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _write_splits(folder: Path, corpus: str, sessions: list[TwinSession],
                  rng: np.random.Generator) -> None:  # fmt: skip
    """The split files, with a binary that disagrees with its score and a missing item."""
    train = [s for s in sessions if s.fold == "train"]
    mislabelled = train[int(rng.integers(len(train)))].id
    if corpus == "daic_woz":
        items = ("NoInterest", "Depressed", "Sleep", "Tired", "Appetite", "Failure",
                 "Concentrating", "Moving")  # fmt: skip
        header = "Participant_ID,PHQ8_Binary,PHQ8_Score,Gender," + ",".join(
            f"PHQ8_{item}" for item in items
        )
        for fold in ("train", "dev"):
            rows = [header]
            for s in (s for s in sessions if s.fold == fold):
                score, binary = (10, 0) if s.id == mislabelled else (s.score, s.binary)
                split = np.diff(np.sort(np.r_[0, rng.integers(0, score + 1, 7), score]))
                cells = [str(v) for v in split]
                if s.id == mislabelled:
                    cells[3] = ""  # a missing item score
                rows.append(f"{s.id},{binary},{score},{s.gender}," + ",".join(cells))
            (folder / f"{fold}_split_Depression_AVEC2017.csv").write_text("\n".join(rows) + "\n")
        test = [s for s in sessions if s.fold == "test"]
        (folder / "test_split_Depression_AVEC2017.csv").write_text(
            "participant_ID,Gender\n" + "".join(f"{s.id},{s.gender}\n" for s in test)
        )
        (folder / "full_test_split.csv").write_text(
            "Participant_ID,PHQ_Binary,PHQ_Score,Gender\n"
            + "".join(f"{s.id},{s.binary},{s.score},{s.gender}\n" for s in test)
        )
        return
    labels = folder / "labels"
    labels.mkdir()
    words = {0: "male", 1: "female"}
    for fold in ("train", "dev", "test"):
        rows = ["Participant_ID,Gender,PHQ_Binary,PHQ_Score,PCL-C (PTSD),PTSD Severity"]
        for s in (s for s in sessions if s.fold == fold):
            score, binary = (10, 0) if s.id == mislabelled else (s.score, s.binary)
            gender = f" {words[s.gender]} " if int(s.id) % 3 == 0 else words[s.gender]
            rows.append(f"{s.id},{gender},{binary},{score},0,20")
        (labels / f"{fold}_split.csv").write_text("\n".join(rows) + "\n")
