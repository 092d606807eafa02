"""Reading a release once into a prepared corpus, cached for later runs.

Prepared layout (``{cache_dir}/{corpus}-{key}/``), which :mod:`.corpus` reads::

    labels.csv          index,label,fold,gender,score    (score: the PHQ-8 total)
    audio/{id}.npy      (T, Da) float32, one row per second
    visual/{id}.npy     (T, Dv) float32, the same seconds
    features.json       {"audio": {"sets", "columns"}, "visual": {...}, "interview": {...}}
    report.json         the release, the options, and what was odd, per session

``key`` is a digest of the options, the release's split files and the size and time
of its session files: a change to any of them prepares anew, an unchanged release is
read from the cache. Both modalities of a session have the length of its first audio
set: a visual set that ends early is padded with zero rows (seconds without a face),
one that runs on is cut. The folder is written beside its final name and renamed
when complete: it is never half-written.

:func:`prepare_unlabelled` prepares sessions for prediction alike, without split files
(every session found, labelled or not) and without ``labels.csv``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dynmultidep.data.interviews.feature_sets import FeatureSet, parse_sets, set_columns
from dynmultidep.data.interviews.quirks import KNOWN
from dynmultidep.data.interviews.release import Session, find_sessions, sessions_at
from dynmultidep.data.interviews.splits import PHQ8_CUTOFF, Label, read_splits
from dynmultidep.data.interviews.transcripts import TRANSCRIPT, participant_seconds
from dynmultidep.data.records import FOLDS
from dynmultidep.errors import DataError

log = logging.getLogger(__name__)

PREPARE_VERSION = 1  # bump when the prepared arrays of a release change
REPORT = "report.json"
EARLY_END = 5  # seconds by which a visual set may end before the audio unreported
INTERVIEW_CORPORA = ("daic_woz", "edaic")


@dataclass(frozen=True)
class InterviewOptions:
    """What a prepared corpus is a function of, besides its release."""

    corpus: str
    audio: tuple[str, ...]
    visual: tuple[str, ...]
    participant_only: bool = False

    def __post_init__(self):
        if self.corpus not in INTERVIEW_CORPORA:
            raise ValueError(f"unknown interview corpus {self.corpus!r}; use one of "
                             f"{', '.join(INTERVIEW_CORPORA)}")  # fmt: skip
        object.__setattr__(self, "audio", tuple(s.name for s in self.sets("audio")))
        object.__setattr__(self, "visual", tuple(s.name for s in self.sets("visual")))
        if self.participant_only and self.corpus != "daic_woz":
            raise ValueError(f"participant_only needs speaker turns, which {self.corpus}'s "
                             "transcripts do not have (DAIC-WOZ's do)")  # fmt: skip

    def sets(self, modality: str) -> tuple[FeatureSet, ...]:
        return parse_sets(self.corpus, modality, getattr(self, modality))

    def columns(self, modality: str) -> tuple[str, ...]:
        return set_columns(self.sets(modality))


def prepared_root(release: Path, options: InterviewOptions, cache_dir: Path,
                  labelled: bool = True) -> Path:  # fmt: skip
    """Where the prepared corpus of ``release`` with ``options`` is cached (``labelled``:
    :func:`prepare`'s, else :func:`prepare_unlabelled`'s)."""
    digest = hashlib.sha256()
    key = [PREPARE_VERSION, asdict(options), str(release.resolve())]
    digest.update(json.dumps(key if labelled else [*key, "unlabelled"]).encode())
    files = [release] if release.is_file() else release.rglob("*")
    for path in sorted(p for p in files if p.is_file()):
        if labelled and path.suffix == ".csv" and path.parent in (release, release / "labels"):
            digest.update(path.read_bytes())  # split files: their content
        else:
            stat = path.stat()
            name = path.relative_to(release) if path != release else path.name
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_dir / f"{options.corpus}-{digest.hexdigest()[:16]}"


def prepare(release: str | Path, options: InterviewOptions, cache_dir: str | Path,
            workers: int = 2) -> Path:  # fmt: skip
    """The prepared corpus of ``release``: read from the cache, or prepared now.

    Raises:
        DataError: a missing or malformed split or session file, a participant a split
            file lists without a session in the release.
    """
    release = Path(release)
    root = prepared_root(release, options, Path(cache_dir))
    if (root / REPORT).is_file():
        return root
    listed = read_splits(options.corpus, release)
    sessions = find_sessions(release)
    for label in listed:
        if label.id not in sessions:
            raise DataError(
                label.source,
                f"line {label.line}: participant {label.id} has no session in {release} "
                f"(no {label.id}_P archive or folder)",
            )
    labels, notes = _reported_folds(listed)
    unlisted = sorted(set(sessions) - {label.id for label in listed})
    if unlisted:
        notes.append(f"{len(unlisted)} session(s) no split file lists, not read: "
                     f"{', '.join(unlisted[:10])}")  # fmt: skip
    log.info("preparing %s from %s: %d sessions (cached at %s)", options.corpus, release,
             len(labels), root)  # fmt: skip
    chosen = [sessions[label.id] for label in labels]

    def finish(out: Path, per_session: dict[str, list[str]]) -> dict:
        _write_index(out, labels)
        return _report(release, options, labels, per_session, notes)

    return _publish(root, chosen, options, workers, finish)


def prepare_unlabelled(path: str | Path, options: InterviewOptions, cache_dir: str | Path,
                       workers: int = 2) -> Path:  # fmt: skip
    """Every session at ``path`` (a release, any folder of ``{id}_P`` archives or folders,
    or one of them) prepared for prediction: no split file is read, so sessions without
    labels are too; the folder has no ``labels.csv``. Cached like :func:`prepare`'s.

    Raises:
        DataError: no session at ``path``, a missing or malformed session file.
    """
    path = Path(path)
    root = prepared_root(path, options, Path(cache_dir), labelled=False)
    if (root / REPORT).is_file():
        return root
    sessions = sessions_at(path)
    if not sessions:
        raise DataError(path, f"no {options.corpus} session ({{id}}_P archive or folder) here")
    log.info("preparing %d %s sessions from %s (cached at %s)", len(sessions), options.corpus,
             path, root)  # fmt: skip

    def finish(out: Path, per_session: dict[str, list[str]]) -> dict:
        found = {i: [*lines, *_known(options, i)] for i, lines in per_session.items()}
        return {"release": str(path.resolve()), "options": asdict(options),
                "version": PREPARE_VERSION, "notes": [],
                "sessions": {i: lines for i, lines in found.items() if lines}}  # fmt: skip

    return _publish(root, list(sessions.values()), options, workers, finish)


def _publish(root: Path, sessions: list[Session], options: InterviewOptions, workers: int,
             finish: Callable[[Path, dict[str, list[str]]], dict]) -> Path:  # fmt: skip
    """Prepare ``sessions`` into a folder beside ``root``, where ``finish(folder, notes
    per session)`` writes the index and returns the report; then rename it to ``root``."""
    jobs = [(session, options) for session in sessions]
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.partial-"))
    try:
        (partial / "audio").mkdir()
        (partial / "visual").mkdir()
        outs = [partial] * len(jobs)
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(_prepare_session, jobs, outs))
        else:
            results = list(map(_prepare_session, jobs, outs))
        per_session = dict(zip((session.id for session in sessions), results, strict=True))
        _write_record(partial, options)
        report = finish(partial, per_session)
        (partial / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        if root.exists():  # a concurrent run finished first
            shutil.rmtree(partial)
        else:
            os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    for line in _warnings(report):
        log.warning("%s: %s", options.corpus, line)
    return root


def _reported_folds(labels: list[Label]) -> tuple[list[Label], list[str]]:
    """Where the test split carries no labels (DAIC-WOZ without ``full_test_split.csv``),
    dev is the reported fold (``test``), and a seeded, stratified fifth of train
    selects checkpoints (``valid``)."""
    if all(label.binary is not None for label in labels):
        return labels, []
    kept = [label for label in labels if label.binary is not None]
    train = sorted((label for label in kept if label.fold == "train"), key=lambda x: int(x.id))
    rng = np.random.default_rng(0)
    chosen = set()
    for binary in (0, 1):
        ids = [label.id for label in train if label.binary == binary]
        chosen |= {ids[i] for i in rng.permutation(len(ids))[: round(len(ids) / 5)]}
    moved = []
    for label in kept:
        fold = {"valid": "test", "train": "valid" if label.id in chosen else "train"}[label.fold]
        moved.append(Label(**{**asdict(label), "fold": fold}))
    return moved, [
        "the test split has no labels: dev is reported as the test fold, and a stratified "
        f"fifth of train ({len(chosen)} sessions, seed 0) is the validation fold"
    ]


def _prepare_session(job: tuple[Session, InterviewOptions], out: Path) -> list[str]:
    """Write one session's two arrays under ``out``; return what was odd about it."""
    session, options = job
    sets = options.sets("audio") + options.sets("visual")
    wanted = [name for fs in sets for name in fs.file_names(session.id)]
    if options.participant_only:
        wanted.append(TRANSCRIPT.format(id=session.id))
    files = session.read(wanted)
    notes = []
    audio = [fs.seconds(session, files) for fs in options.sets("audio")]
    steps = len(audio[0])
    visual = [fs.seconds(session, files) for fs in options.sets("visual")]
    early = [fs.name for fs, part in zip(options.sets("visual"), visual, strict=True)
             if steps - len(part) > EARLY_END]  # fmt: skip
    if early:
        short = steps - min(len(part) for part in visual)
        notes.append(f"the video ({', '.join(early)}) ends {short} s before the audio: "
                     "zero rows (no face)")  # fmt: skip
    visual = [_fit(part, steps) for part in visual]
    audio = np.concatenate([_fit(part, steps) for part in audio], axis=1)
    visual = np.concatenate(visual, axis=1)
    if options.participant_only:
        name = TRANSCRIPT.format(id=session.id)
        if name not in files:
            raise DataError(session.where(name), f"missing: session {session.id} has no "
                            "transcript, which participant_only needs")  # fmt: skip
        keep, interviewer = participant_seconds(files[name], session.where(name), steps)
        if not interviewer:
            notes.append("the transcript has no interviewer lines")
        if not keep.any():
            raise DataError(session.where(name), "has no participant turn within the audio")
        audio, visual = audio[keep], visual[keep]
    if len(audio) == 0:
        raise DataError(session.source, "has no second of audio features")
    np.save(out / "audio" / f"{session.id}.npy", audio)
    np.save(out / "visual" / f"{session.id}.npy", visual)
    return notes


def _fit(seconds: np.ndarray, steps: int) -> np.ndarray:
    """``seconds`` cut or zero-padded to ``steps`` rows."""
    if len(seconds) >= steps:
        return seconds[:steps]
    return np.concatenate([seconds, np.zeros((steps - len(seconds), seconds.shape[1]),
                                             seconds.dtype)])  # fmt: skip


def _write_index(out: Path, labels: list[Label]) -> None:
    rows = ["index,label,fold,gender,score"]
    for label in sorted(labels, key=lambda x: (FOLDS.index(x.fold), int(x.id))):
        rows.append(f"{label.id},{label.binary},{label.fold},{label.gender or ''},{label.score:g}")
    (out / "labels.csv").write_text("\n".join(rows) + "\n")


def _write_record(out: Path, options: InterviewOptions) -> None:
    record = {m: {"sets": list(getattr(options, m)), "columns": list(options.columns(m))}
              for m in ("audio", "visual")}  # fmt: skip
    record["interview"] = asdict(options)
    (out / "features.json").write_text(json.dumps(record, indent=2) + "\n")


def _report(release: Path, options: InterviewOptions, labels: list[Label],
            per_session: dict[str, list[str]], notes: list[str]) -> dict:  # fmt: skip
    found = {}
    for label in labels:
        lines = list(per_session[label.id])
        if label.binary is not None and label.binary != int(label.score >= PHQ8_CUTOFF):
            lines.append(f"binary {label.binary} disagrees with score {label.score:g} "
                         f"(cut-off {PHQ8_CUTOFF}); the released binary is kept")  # fmt: skip
        lines += _known(options, label.id)
        if lines:
            found[label.id] = lines
    return {"release": str(release.resolve()), "options": asdict(options),
            "version": PREPARE_VERSION, "notes": notes, "sessions": found}  # fmt: skip


def _known(options: InterviewOptions, session: str) -> list[str]:
    known = KNOWN[options.corpus].get(session)
    return [f"known: {known}"] if known else []


def _warnings(report: dict) -> list[str]:
    """One line per note and per session with findings of its own (not only known ones)."""
    lines = list(report["notes"])
    for session, found in report["sessions"].items():
        own = [line for line in found if not line.startswith("known: ")]
        if own:
            lines.append(f"session {session}: {'; '.join(own)}")
    return lines


def read_report(root: str | Path) -> dict | None:
    path = Path(root) / REPORT
    return json.loads(path.read_text()) if path.is_file() else None
