"""Turn the LMVD release into the prepared layout that :mod:`.lmvd` reads.

Release (``--release``)::

    Audio_feature/{id}.npy         (T_a, 128) VGGish embeddings
    Video_feature/[sub/]{id}.csv   OpenFace per-frame CSV, ", " separated
    label/{id}_Depression.csv      one line, "0" or "1"

Prepared (``--out``)::

    labels.csv                     index,label,fold
    audio/{id}.npy                 (T_a, 128) float32
    visual/{id}_visual.npy         (T_v, D) float32: frames with
                                   (frame - 1) % 30 == 0, the columns of the
                                   chosen OpenFace sets side by side
    features.json                  {"visual": {"sets": [...], "columns": [...]}}

The visual sets (``visual``, ``--visual landmarks,aus,gaze,pose``; default
``landmarks``) are those of :mod:`.openface`: ``landmarks`` (136, each row
standardised across its 136 values), ``aus`` (35), ``gaze`` (8), ``pose`` (6),
in the order given. ``landmarks`` alone writes what this module wrote before
feature sets existed, byte for byte. ``features.json`` (:mod:`.feature_record`)
tells the DataModule and the configs the width and names of the columns.

Ids stay strings from file name to ``labels.csv`` (``"0602"`` keeps its zero).
Every output file is written atomically; finished vlogs are skipped on a
re-run unless ``force``. A folder prepared with other visual sets (a folder
without ``features.json`` holds ``landmarks``) is refused unless ``force``,
which rewrites every vlog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynmultidep.atomic import save_array_atomic, write_text_atomic
from dynmultidep.data import lmvd
from dynmultidep.data.arrays import load_features
from dynmultidep.data.feature_record import (
    FEATURE_RECORD,
    recorded_visual_columns,
    visual_entry,
    write_feature_record,
)
from dynmultidep.data.openface import (
    DEFAULT_SETS,
    describe_columns,
    parse_visual_sets,
    read_visual_sets,
    visual_columns,
)
from dynmultidep.data.records import FOLDS, parse_choice, read_table
from dynmultidep.errors import DataError

log = logging.getLogger(__name__)

LABEL_SUFFIX = "_Depression.csv"


@dataclass(frozen=True)
class ReleaseItem:
    id: str
    label: int
    audio: Path
    video: Path


def natural_key(vlog_id: str) -> tuple:
    """Order ids by number, then by spelling; the id itself is never changed."""
    return (int(vlog_id), vlog_id) if vlog_id.isdigit() else (float("inf"), vlog_id)


def read_label_file(path: Path) -> int:
    text = path.read_text(encoding="utf-8-sig", errors="replace").strip()
    if text not in ("0", "1"):
        raise DataError(path, f"expected a single 0 or 1, found {text[:20]!r}")
    return int(text)


def scan_release(release: str | Path) -> list[ReleaseItem]:
    """Find every labelled vlog of the release and its two feature files."""
    release = Path(release)
    dirs = {name: release / name for name in ("Audio_feature", "Video_feature", "label")}
    for path in dirs.values():
        if not path.is_dir():
            raise DataError(path, "folder not found; expected the LMVD release layout")
    videos: dict[str, Path] = {}
    for path in sorted(dirs["Video_feature"].rglob("*.csv")):
        if path.stem in videos:
            raise DataError(
                path, f"second OpenFace CSV for id {path.stem!r} (first: {videos[path.stem]})"
            )
        videos[path.stem] = path
    items = []
    for path in sorted(dirs["label"].glob(f"*{LABEL_SUFFIX}")):
        vlog_id = path.name[: -len(LABEL_SUFFIX)]
        audio = dirs["Audio_feature"] / f"{vlog_id}.npy"
        if not audio.is_file():
            raise DataError(
                audio, f"missing: id {vlog_id!r} has a label file but no audio features"
            )
        if vlog_id not in videos:
            raise DataError(
                dirs["Video_feature"] / f"{vlog_id}.csv",
                f"missing: id {vlog_id!r} has a label file but no OpenFace CSV",
            )
        items.append(ReleaseItem(vlog_id, read_label_file(path), audio, videos[vlog_id]))
    if not items:
        raise DataError(dirs["label"], f"no *{LABEL_SUFFIX} files")
    return sorted(items, key=lambda item: natural_key(item.id))


def read_split_file(path: str | Path, items: Sequence[ReleaseItem]) -> dict[str, str]:
    """``id -> fold`` from a split file with header ``index,label,fold``.

    Its labels must agree with the release's label files.
    """
    path = Path(path)
    labels = {item.id: item.label for item in items}
    folds: dict[str, str] = {}
    for line, row in read_table(path, ("index", "label", "fold")):
        vlog_id = row["index"]
        if vlog_id not in labels:
            raise DataError(path, f"line {line}: id {vlog_id!r} is not in the release")
        if row["label"] != str(labels[vlog_id]):
            raise DataError(
                path,
                f"line {line}: label {row['label']!r} for id {vlog_id!r} disagrees with "
                f"label/{vlog_id}{LABEL_SUFFIX} ({labels[vlog_id]})",
            )
        if vlog_id in folds:
            raise DataError(path, f"line {line}: id {vlog_id!r} is listed more than once")
        folds[vlog_id] = parse_choice(row["fold"], FOLDS, "fold", path, line)
    left_out = len(labels) - len(folds)
    if left_out:
        log.warning(
            "%s: %d release vlogs are not in the split file and are skipped", path, left_out
        )
    return folds


def stratified_split(
    items: Sequence[ReleaseItem], ratios: Sequence[float], seed: int
) -> dict[str, str]:
    """``id -> fold``, each label split by ``ratios`` (train, valid, test)."""
    ratios = np.asarray(ratios, dtype=float)
    if ratios.shape != (3,) or (ratios < 0).any() or abs(ratios.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"ratios must be three non-negative numbers summing to 1, got {list(ratios)}"
        )
    rng = np.random.default_rng(seed)
    folds = {}
    for label in (0, 1):
        ids = [item.id for item in items if item.label == label]
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n_train = round(ratios[0] * len(ids))
        n_valid = round(ratios[1] * len(ids))
        for i, vlog_id in enumerate(ids):
            folds[vlog_id] = (
                "train" if i < n_train else "valid" if i < n_train + n_valid else "test"
            )
    return folds


def _width(path: Path) -> int | None:
    """The number of columns of the 2-D ``.npy`` array at ``path``, read from its header."""
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError):
        return None
    return shape[1] if len(shape) == 2 else None


def prepare_item(
    item: ReleaseItem, out: Path, force: bool, sets: Sequence[str] = DEFAULT_SETS
) -> bool:
    """Write one vlog's prepared arrays; ``False`` if they existed already."""
    audio_out = lmvd.audio_path(out, item.id)
    video_out = lmvd.video_path(out, item.id)
    width = len(visual_columns(sets))
    if not force and audio_out.is_file() and _width(video_out) == width:
        return False
    audio = load_features(item.audio, lmvd.AUDIO_DIM)
    visual = read_visual_sets(item.video, sets)
    save_array_atomic(audio_out, audio)
    save_array_atomic(video_out, visual)
    return True


def _existing_columns(out: Path) -> tuple[str, ...] | None:
    """The visual columns ``out`` was prepared with; ``None`` for a fresh folder."""
    recorded = recorded_visual_columns(out)
    if recorded is not None:
        return recorded
    if any((out / "visual").glob("*_visual.npy")):
        return lmvd.VIDEO_COLUMNS  # prepared before features.json existed: landmarks
    return None


def claim_folder(out: Path, sets: Sequence[str], force: bool) -> None:
    """Record ``sets`` in ``out/features.json`` before any array is written.

    A folder prepared with other sets is refused unless ``force``; then the
    visual entry is removed first and recorded once every vlog is rewritten
    (by :func:`prepare_lmvd`), so an interrupted forced run leaves no record
    claiming arrays it did not write.
    """
    if force:
        if (out / FEATURE_RECORD).is_file():
            write_feature_record(out, "visual", None)
        return
    existing = _existing_columns(out)
    wanted = visual_columns(sets)
    if existing is not None and tuple(existing) != wanted:
        raise DataError(
            out / FEATURE_RECORD,
            f"this folder was prepared with visual sets {describe_columns(existing)}, not "
            f"{describe_columns(wanted)}; pass --force to rewrite every vlog, or another --out",
        )
    write_feature_record(out, "visual", visual_entry(sets))


def prepare_lmvd(
    release: str | Path,
    out: str | Path,
    split_file: str | Path | None = None,
    seed: int = 0,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    force: bool = False,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
    visual: str | Sequence[str] = DEFAULT_SETS,
) -> dict[str, int]:
    """Prepare the release at ``release`` into ``out``.

    Args:
        visual: the OpenFace sets of the visual arrays, in order (a sequence
            of names or ``"landmarks,gaze"``; see :mod:`.openface`).

    Returns:
        counts: ``written``, ``skipped`` and the number of vlogs per fold.
    """
    out = Path(out)
    sets = parse_visual_sets(visual)
    items = scan_release(release)
    folds = (
        read_split_file(split_file, items) if split_file else stratified_split(items, ratios, seed)
    )
    items = [item for item in items if item.id in folds]
    claim_folder(out, sets, force)
    written = 0
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            n = len(items)
            results = pool.map(prepare_item, items, [out] * n, [force] * n, [sets] * n)
            for done, wrote in enumerate(results, start=1):
                written += wrote
                if on_progress:
                    on_progress(done, len(items))
    else:
        for done, item in enumerate(items, start=1):
            written += prepare_item(item, out, force, sets)
            if on_progress:
                on_progress(done, len(items))
    lines = ["index,label,fold"] + [f"{i.id},{i.label},{folds[i.id]}" for i in items]
    write_text_atomic(out / "labels.csv", "\n".join(lines) + "\n")
    if force:
        write_feature_record(out, "visual", visual_entry(sets))
    counts = {"written": written, "skipped": len(items) - written}
    counts.update({fold: sum(folds[i.id] == fold for i in items) for fold in FOLDS})
    return counts
