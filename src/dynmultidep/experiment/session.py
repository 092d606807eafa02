"""What every entry point does around its task: print and save the composed
config, turn expected failures into a one-line error and exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import rich.syntax
import rich.tree
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from dynmultidep.atomic import write_text_atomic
from dynmultidep.cli import EXIT_BAD_INPUT
from dynmultidep.errors import DynMultiDepError

FIRST = ("dataset", "model", "module", "trainer", "callbacks", "logger", "paths")


def config_tree(cfg: DictConfig) -> rich.tree.Tree:
    """The config as a tree, one branch per top-level group (resolved)."""
    tree = rich.tree.Tree("config", guide_style="dim")
    keys = [k for k in FIRST if k in cfg] + [k for k in cfg if k not in FIRST]
    for key in keys:
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(f"[bold]{key}[/bold]").add(rich.syntax.Syntax(text, "yaml"))
    return tree


def show_config(cfg: DictConfig, save_to: str | Path | None = None) -> None:
    tree = config_tree(cfg)
    Console().print(tree)
    if save_to is not None:
        capture = Console(file=None, record=True, width=100, force_terminal=False)
        with capture.capture():
            capture.print(tree)
        write_text_atomic(save_to, capture.export_text())


def guarded(task: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """Wrap a Hydra task: bad input or config (a :class:`DynMultiDepError` or
    ``ValueError``, also when raised inside ``hydra.utils.instantiate``) prints
    ``error: ...`` on one line and exits with status 2 instead of a traceback."""

    @functools.wraps(task)
    def run(cfg: DictConfig):
        try:
            return task(cfg)
        except (DynMultiDepError, ValueError, InstantiationException) as err:
            cause = err
            while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
                cause = cause.__cause__
            if not isinstance(cause, DynMultiDepError | ValueError):
                raise
            print(f"error: {' '.join(str(cause).split())}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)

    return run
