"""Shared behaviour of the command-line scripts: one-line errors, non-zero exit."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from dynmultidep.errors import DynMultiDepError

EXIT_BAD_INPUT = 2


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run ``main(argv)``; turn expected failures into ``error: ...`` and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        code = main(argv)
    except (DynMultiDepError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
