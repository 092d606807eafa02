"""Extracting video files for a trained checkpoint: the features its model takes.

The checkpoint says what its model was trained on: the corpus layout (D-Vlog's
eGeMAPS and landmarks, or LMVD's VGGish and landmarks), the visual columns,
and, when the training corpus was itself extracted here, the extraction
settings. Videos are extracted with those settings into a cache folder named
after them (``{cache_dir}/{audio}-{digest}``), so later runs reuse the work and
two settings never share a folder. A model that takes features the extractor
cannot compute (OpenFace action units, gaze or pose; VGGish without its
weights) is refused before anything is extracted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.data.corpora import get_corpus
from dynmultidep.errors import CheckpointError, DataError
from dynmultidep.features.corpus import Report, extract_corpus, extraction_manifest
from dynmultidep.features.manifest import LAYOUTS
from dynmultidep.features.media import VIDEO_SUFFIXES
from dynmultidep.features.pipeline import ExtractionSettings
from dynmultidep.features.sources import find_videos
from dynmultidep.features.visual import find_predictor

log = logging.getLogger(__name__)

AUDIO_OF_LAYOUT = {layout: audio for audio, layout in LAYOUTS.items()}


def is_video_input(path: str | Path) -> bool:
    """A video file, or a folder holding video files (and no corpus layout)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES
    if (
        path.is_dir()
        and not (path / "labels.csv").exists()
        and not (path / "features.json").exists()
    ):
        return any(p.suffix.lower() in VIDEO_SUFFIXES for p in path.rglob("*"))
    return False


@dataclass(frozen=True)
class Extracted:
    root: Path  # the cache folder, a corpus in ``layout``
    layout: str
    ids: list[str]  # the videos' ids, extracted now or found in the cache
    report: Report
    settings: ExtractionSettings


def settings_for(
    corpus: str, trained: Mapping | None, visual_columns, path: str | Path
) -> ExtractionSettings:
    """The extraction settings that give the checkpoint's features.

    Args:
        corpus: the layout the model was trained on.
        trained: the training corpus's recorded extraction settings, if any.
        visual_columns: the visual columns the model was trained on (``None``:
            not recorded, the layout's landmarks).
    """
    if corpus not in AUDIO_OF_LAYOUT:
        raise CheckpointError(path, f"was trained on corpus {corpus!r}; videos cannot be scored")
    if visual_columns is not None and tuple(visual_columns) != get_corpus(corpus).video_columns:
        raise CheckpointError(
            path,
            f"its model takes {len(visual_columns)} visual columns (e.g. "
            f"{', '.join(list(visual_columns)[-3:])}); the extractor computes the 68 landmarks "
            "only, so it cannot score videos",
        )
    settings = dict(trained or {})
    settings.setdefault("audio", AUDIO_OF_LAYOUT[corpus])
    try:
        return ExtractionSettings(**settings)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            path, f"records extraction settings this version cannot apply ({err})"
        ) from None


def cache_folder(cache_dir: str | Path, wanted: dict) -> Path:
    """``{cache_dir}/{audio}-{digest}``: the digest of the settings and model files
    of the manifest ``wanted`` (:func:`~.corpus.extraction_manifest`)."""
    keyed = {"settings": wanted["settings"], "models": wanted["models"]}
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    return Path(cache_dir) / f"{wanted['settings']['audio']}-{digest[:10]}"


def extract_for_checkpoint(
    videos: str | Path,
    settings: ExtractionSettings,
    cache_dir: str | Path,
    ckpt_path: str | Path,
    workers: int = 1,
    predictor: str | Path | None = None,
    vggish_checkpoint: str | Path | None = None,
    vggish_pca: str | Path | None = None,
) -> Extracted:
    """Extract the videos at ``videos`` (a file or folder) into the cache."""
    if settings.audio == "vggish" and vggish_checkpoint is None:
        raise CheckpointError(
            ckpt_path,
            "was trained on LMVD's VGGish audio features; scoring videos needs the VGGish "
            "weights, which no package ships: pass extract.vggish_checkpoint=FILE "
            "(torchvggish's vggish-10086976.pth)",
        )
    paths = find_videos([videos])
    wanted = extraction_manifest(settings, find_predictor(predictor), vggish_checkpoint, vggish_pca)
    root = cache_folder(cache_dir, wanted)
    log.info("extracting %d videos into %s (a cache reused by later runs)", len(paths), root)
    report = extract_corpus(
        paths, root, settings, workers=workers, predictor=predictor,
        vggish_checkpoint=vggish_checkpoint, vggish_pca=vggish_pca,
    )  # fmt: skip
    for failed in report.of("failed"):
        log.error("%s", failed.message)
    ids = [o.id for o in report.outcomes if o.status != "failed"]
    if not ids:
        first = report.of("failed")[0].message
        raise DataError(videos, f"no video could be extracted (first failure: {first})")
    return Extracted(root, LAYOUTS[settings.audio], ids, report, settings)
