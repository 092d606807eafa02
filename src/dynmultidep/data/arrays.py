"""Reading feature arrays safely.

``.npy`` files are always opened with ``allow_pickle=False``: a corpus file can
never execute code. Every problem becomes a one-line :class:`DataError` naming
the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dynmultidep.errors import DataError


def load_features(path: str | Path, width: int) -> np.ndarray:
    """Load a ``(T, width)`` feature array as float32 and check it.

    Raises:
        DataError: missing or unreadable file, pickled content, wrong rank or
            width, no rows, non-numeric dtype, or NaN/Inf values.
    """
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except ValueError as err:
        if "pickle" in str(err):
            raise DataError(
                path, "holds pickled Python objects; refusing to load it (allow_pickle=False)"
            ) from None
        raise DataError(path, f"not a readable .npy file ({err})") from None
    except (OSError, EOFError) as err:
        raise DataError(path, f"cannot read .npy file ({err})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive behind a .npy name
        array.close()
        raise DataError(path, "is an .npz archive, expected a single .npy array")
    return check_features(array, width, path)


def check_features(array: np.ndarray, width: int, path: str | Path) -> np.ndarray:
    """Validate a feature array read from ``path`` and return it as float32."""
    if array.ndim != 2 or array.shape[1] != width:
        raise DataError(path, f"expected an array of shape (T, {width}), got shape {array.shape}")
    if array.shape[0] == 0:
        raise DataError(path, "has no rows (T = 0)")
    if array.dtype.kind not in "fiub":
        raise DataError(path, f"has dtype {array.dtype}, expected real numbers")
    with np.errstate(over="ignore"):  # overflow to Inf is reported just below
        array = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        raise DataError(
            path,
            f"contains {int((~finite).sum())} NaN/Inf values in float32 "
            f"(first at row {int(bad_rows[0])})",
        )
    return array
