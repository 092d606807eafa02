"""DynMultiDep: depression detection from vlogs with Mamba experts and dynamic fusion."""

__version__ = "0.1.0"

from dynmultidep import resolvers  # noqa: E402,F401  (registers ${corpus_video_dim:...})
