"""Feature extraction: from a vlog's video file to the corpora's feature layouts.

Needs the optional ``extract`` extra (``pip install -e '.[extract]'``): PyAV
decodes the file, openSMILE computes eGeMAPS descriptors, dlib finds faces and
their 68 landmarks, and :mod:`.vggish` computes LMVD's audio embeddings from a
checkpoint the user supplies. Modules import these packages lazily, so the rest
of the project works without them.
"""

from importlib import import_module
from types import ModuleType

from dynmultidep.errors import MissingExtraError


def import_extra(name: str) -> ModuleType:
    """Import ``name``, one of the ``extract`` extra's packages, or say how to install it."""
    try:
        return import_module(name)
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"feature extraction needs {name!r} from the 'extract' extra: "
            "pip install -e '.[extract]'"
        ) from None
