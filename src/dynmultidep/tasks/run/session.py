"""What every entry point does around its task: print and save the composed
config, turn expected failures into a one-line error and exit status 2 (in a
multirun: record the failure in the job's directory and go on)."""

from __future__ import annotations

import functools
import logging
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import rich.syntax
import rich.tree
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from dynmultidep.atomic import write_text_atomic
from dynmultidep.cli import EXIT_BAD_INPUT
from dynmultidep.errors import DynMultiDepError

log = logging.getLogger(__name__)

FAILURE_FILE = "error.log"  # in a failed multirun job's directory
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


def expected_error(err: BaseException) -> Exception | None:
    """The error a user can act on behind ``err`` (a :class:`DynMultiDepError` or
    ``ValueError``, also when raised inside ``hydra.utils.instantiate``), else ``None``."""
    cause = err
    while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause if isinstance(cause, DynMultiDepError | ValueError) else None


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def exit_with_error(err: BaseException) -> NoReturn:
    print(f"error: {one_line(err)}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(cfg: DictConfig, err: Exception, expected: Exception | None) -> None:
    """Write why a multirun job failed into its directory as ``error.log`` (the summary
    lists it) and say it on stderr; the other jobs go on."""
    message = f"error: {one_line(expected or err)}"
    details = "" if expected else "\n" + "".join(traceback.format_exception(err))
    print(message, file=sys.stderr)
    if details:
        log.error("job failed:%s", details)
    write_text_atomic(Path(cfg.paths.output_dir) / FAILURE_FILE, message + details + "\n")


def guarded(task: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """Wrap a Hydra task. A single run turns bad input or config (see
    :func:`expected_error`) into ``error: ...`` on one line and exit status 2 instead of a
    traceback. In a multirun a failing job (for any reason) records ``error.log`` in its
    directory and returns NaN, so the other jobs still run and the summary lists it."""

    @functools.wraps(task)
    def run(cfg: DictConfig):
        if in_multirun():  # a job run again (resumed multirun): forget its last failure
            (Path(cfg.paths.output_dir) / FAILURE_FILE).unlink(missing_ok=True)
        try:
            return task(cfg)
        except Exception as err:
            expected = expected_error(err)
            if in_multirun():
                record_failure(cfg, err, expected)
                return math.nan
            if expected is None:
                raise
            exit_with_error(expected)

    return run
