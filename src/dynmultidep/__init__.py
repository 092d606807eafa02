"""DynMultiDep: depression detection from vlogs with Mamba experts and dynamic fusion."""

__version__ = "0.1.0"

from dynmultidep.allocation import use_huge_pages  # noqa: E402

use_huge_pages()  # before the first large CPU tensor: see dynmultidep.allocation

from dynmultidep import resolvers  # noqa: E402,F401  (registers ${corpus_video_dim:...})
