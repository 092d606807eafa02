"""The extraction manifest: the ``extraction`` key of a corpus's ``features.json``.

It records what shaped the values: the settings
(:class:`~.pipeline.ExtractionSettings`), the model files (dlib's shape
predictor, the VGGish weights, by name, size and a digest of their first MiB),
the layout, and the versions of the packages. Extraction into a folder written
with other settings or other model files is refused: one corpus, one way of
extracting it. Other package versions are only warned about, and the manifest
keeps describing the first run.
"""

from __future__ import annotations

import hashlib
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


def versions() -> dict:
    """Versions of the packages the extraction uses."""
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
    return found


def file_identity(path: Path) -> str:
    """``name (size bytes, sha256 of the first MiB)``: cheap on a 100 MB model."""
    with path.open("rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
    return f"{path.name} ({path.stat().st_size} bytes, {head})"


def model_files(
    predictor: Path, vggish: str | Path | None = None, pca: str | Path | None = None
) -> dict:
    """The model files an extraction reads, as :func:`file_identity` strings."""
    found = {"shape_predictor": file_identity(predictor)}
    for name, path in (("vggish_checkpoint", vggish), ("vggish_pca", pca)):
        if path is not None:
            found[name] = file_identity(Path(path))
    return found


def manifest(settings: ExtractionSettings, models: dict) -> dict:
    return {
        "layout": LAYOUTS[settings.audio],
        "settings": settings.as_dict(),
        "models": models,
        "versions": versions(),
    }


def _differences(have: dict, want: dict) -> str:
    keys = sorted(set(have) | set(want))
    return ", ".join(
        f"{k}={have.get(k)!r} (now {want.get(k)!r})" for k in keys if have.get(k) != want.get(k)
    )


def check_manifest(out: Path, wanted: dict) -> bool:
    """Refuse ``out`` if it holds a corpus extracted with other settings or model
    files, or files this extractor did not write; warn about other package
    versions. Returns whether ``out`` already has a manifest."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise DataError(out, "output exists and is not a folder")
    found = (read_feature_record(out) or {}).get(MANIFEST_KEY)
    if found is None:
        if any(out.iterdir()):
            raise DataError(
                out, "folder is not empty and holds no extracted corpus; choose an empty --out"
            )
        return False
    for key in ("settings", "models"):
        differing = _differences(found.get(key, {}), wanted[key])
        if differing:
            raise DataError(
                out / FEATURE_RECORD,
                f"this corpus was extracted with {differing}; one corpus holds one way of "
                "extracting it: choose another --out",
            )
    changed = _differences(found.get("versions", {}), wanted["versions"])
    if changed:
        log.warning("%s: package versions differ from the corpus's first run: %s", out, changed)
    return True
