"""D-Vlog's visual features: 68 facial landmarks of the largest face per step.

dlib's HOG face detector finds faces, and its 68-point shape predictor places
the landmarks in the iBUG 300-W order the release uses. A row is
``x0..x67, y0..y67`` in pixels of the full frame; a frame with no face is an
all-zero row, as in the release.

The detector finds faces of about 80 px and up in the image it scans. Frames
taller than ``detect_height`` are scanned downscaled to that height (faster;
the smallest face found grows by the same factor), and ``upsample`` doubles the
scanned image that many times (slower; finds faces half as large each time).
The landmarks are always placed on the full-resolution frame.

The shape predictor (``shape_predictor_68_face_landmarks.dat``, ~100 MB) is
found in the ``face-recognition-models`` package, in Debian's ``libdlib-data``,
or given as a path. It was trained on iBUG 300-W, whose terms forbid
commercial use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from dynmultidep.data.dvlog import VIDEO_COLUMNS
from dynmultidep.errors import DataError
from dynmultidep.features import import_extra

COLUMNS = VIDEO_COLUMNS  # x0..x67, y0..y67: the release's names and order
PREDICTOR_NAME = "shape_predictor_68_face_landmarks.dat"
SYSTEM_PREDICTORS = (Path("/usr/share/dlib") / PREDICTOR_NAME,)


def find_predictor(path: str | Path | None = None) -> Path:
    """The shape predictor file: ``path`` if given, else the one installed with
    ``face-recognition-models`` (found without importing that package) or dlib's
    system data."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "shape predictor file not found")
        return path
    candidates = list(SYSTEM_PREDICTORS)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidates.insert(0, Path(folder) / "models" / PREDICTOR_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(
        PREDICTOR_NAME,
        "dlib's 68-point shape predictor is not installed; "
        "pip install -e '.[extract]' (face-recognition-models) or pass --predictor FILE",
    )


def downscale(gray: np.ndarray, factor: int) -> np.ndarray:
    """``(H, W)`` uint8 -> ``(H // f, W // f)``: the mean of each ``f x f`` block."""
    h, w = (gray.shape[0] // factor) * factor, (gray.shape[1] // factor) * factor
    blocks = gray[:h, :w].reshape(h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)


class LandmarkExtractor:
    """Landmarks of the largest face in ``(H, W)`` uint8 frames.

    Args:
        upsample: times the detector doubles the scanned image (0: as is).
        detect_height: frames taller than this are scanned downscaled by the
            smallest whole factor that brings them to at most this height
            (``None`` or 0: always full resolution).
        predictor: path of the shape predictor (default: :func:`find_predictor`).
    """

    def __init__(
        self,
        upsample: int = 0,
        detect_height: int | None = None,
        predictor: str | Path | None = None,
    ):
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        dlib = import_extra("dlib")
        self.upsample = upsample
        self.detect_height = detect_height or None
        self.predictor_path = find_predictor(predictor)
        self.detector = dlib.get_frontal_face_detector()
        try:
            self.predictor = dlib.shape_predictor(str(self.predictor_path))
        except RuntimeError as err:
            raise DataError(self.predictor_path, f"not a dlib shape predictor ({err})") from None
        self._rectangle = dlib.rectangle

    def factor(self, height: int) -> int:
        if self.detect_height is None or height <= self.detect_height:
            return 1
        return int(np.ceil(height / self.detect_height))

    def __call__(self, gray: np.ndarray) -> np.ndarray | None:
        """``(136,)`` float64 ``x0..x67, y0..y67`` in pixels, or ``None`` if no face."""
        factor = self.factor(gray.shape[0])
        scanned = downscale(gray, factor) if factor > 1 else gray
        faces = self.detector(scanned, self.upsample)
        if len(faces) == 0:
            return None
        largest = max(faces, key=lambda r: r.width() * r.height())
        if factor > 1:
            largest = self._rectangle(
                largest.left() * factor,
                largest.top() * factor,
                (largest.right() + 1) * factor - 1,
                (largest.bottom() + 1) * factor - 1,
            )
        shape = self.predictor(gray, largest)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        return np.concatenate([points[:, 0], points[:, 1]])
