"""The extraction manifest: the ``extraction`` key of a corpus's ``features.json``.

It records the settings that shaped the values (:class:`~.pipeline.ExtractionSettings`),
the layout, and the versions of the extractors. Extraction into a folder
written with other settings is refused: one corpus, one set of settings.
Other versions of the extractors are only warned about.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from dynmultidep.data.feature_record import FEATURE_RECORD, read_feature_record
from dynmultidep.errors import DataError
from dynmultidep.features.pipeline import ExtractionSettings

log = logging.getLogger(__name__)

MANIFEST_KEY = "extraction"
LAYOUTS = {"egemaps": "dvlog", "vggish": "lmvd"}  # audio features -> corpus layout
_PACKAGES = ("dynmultidep", "opensmile", "av", "dlib-bin", "torch")


def versions(predictor: Path, vggish: Path | None = None) -> dict:
    """Versions of the packages and model files the extraction used."""
    found = {}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        import av

        found["ffmpeg"] = ".".join(map(str, av.library_versions.get("libavcodec", ())))
    except ImportError:  # pragma: no cover - the extra is installed wherever this runs
        pass
    found["shape_predictor"] = f"{predictor.name} ({predictor.stat().st_size} bytes)"
    if vggish is not None:
        found["vggish_checkpoint"] = f"{vggish.name} ({vggish.stat().st_size} bytes)"
    return found


def manifest(settings: ExtractionSettings, found_versions: dict) -> dict:
    return {
        "layout": LAYOUTS[settings.audio],
        "settings": settings.as_dict(),
        "versions": found_versions,
    }


def check_manifest(out: Path, wanted: dict) -> None:
    """Refuse ``out`` if it holds a corpus extracted with other settings, or
    files this extractor did not write; warn about other extractor versions."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError(out, "output exists and is not a folder")
    record = read_feature_record(out) or {}
    found = record.get(MANIFEST_KEY)
    if found is None:
        if any(out.iterdir()):
            raise DataError(
                out, "folder is not empty and holds no extracted corpus; choose an empty --out"
            )
        return
    have, want = found.get("settings", {}), wanted["settings"]
    differing = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
    if differing:
        text = ", ".join(f"{k}={a!r} (now {b!r})" for k, (a, b) in differing.items())
        raise DataError(
            out / FEATURE_RECORD,
            f"this corpus was extracted with {text}; one corpus holds one set of settings: "
            "choose another --out",
        )
    old = found.get("versions", {})
    changed = {k: (old.get(k), v) for k, v in wanted["versions"].items() if old.get(k) != v}
    if changed:
        log.warning(
            "%s: extractor versions differ from the corpus's: %s",
            out,
            ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()),
        )
