"""What a multirun does besides its jobs (a Hydra callback, set in conf/hydra/default.yaml):

* before the first job, refuse a grid the corpus cannot run (a gender grid on
  LMVD, which has no gender labels; k folds the pool cannot fill) with one line and
  exit status 2; for a k-fold sweep, write its ``folds.csv``;
* after the last job, write the sweep's ``summary.csv`` / ``summary.md`` /
  heatmaps (:mod:`dynmultidep.sweeps.summary`), print the table, and exit
  with status 1 if any job failed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig

from dynmultidep.data.corpora import get_corpus
from dynmultidep.data.records import normalize_gender
from dynmultidep.errors import DynMultiDepError
from dynmultidep.protocols.kfold import FOLDS_FILE, KFold, assign, job_split, write_folds
from dynmultidep.sweeps.summary import GENDER_KEYS, write_summary
from dynmultidep.tasks.run.session import exit_with_error

log = logging.getLogger(__name__)


def swept_values(config: DictConfig, key: str) -> set[str]:
    """Every value the sweep gives ``key``: from the sweeper's ``params`` (sweep configs)
    and from the command line (``key=a,b``)."""
    params = config.hydra.get("sweeper", {}).get("params") or {}
    given = [f"{k}={v}" for k, v in params.items()]
    given += list(config.hydra.overrides.task)
    values: set[str] = set()
    for override in OverridesParser.create().parse_overrides(given):
        if override.key_or_group != key:
            continue
        if override.is_sweep_override():
            values.update(override.sweep_string_iterator())
        else:
            values.add(str(override.value()))
    return values


def check_sweep(config: DictConfig) -> None:
    """A :class:`DynMultiDepError` for a grid the corpus cannot run: a gender grid on a
    corpus without genders, or of genders it does not have (``m`` on DAIC-WOZ, whose
    genders are the codes 0 and 1)."""
    dataset = config.get("dataset") or {}
    corpus = dataset.get("corpus")
    if corpus is None:
        return
    spec = get_corpus(corpus)
    for key in GENDER_KEYS:
        try:  # both (any spelling) selects no gender
            chosen = {g: normalize_gender(g) for g in swept_values(config, key)}
        except ValueError as err:
            raise DynMultiDepError(f"{key}: {err}") from None
        genders = {g for g, selected in chosen.items() if selected is not None}
        if genders and not spec.has_gender:
            raise DynMultiDepError(
                f"{key}: {corpus.upper()} has no gender labels, so a gender grid cannot run on "
                f"it (asked for {', '.join(sorted(genders))}); sweep seeds or models instead"
            )
        other = sorted(g for g in genders if chosen[g] not in spec.genders)
        if other:
            raise DynMultiDepError(
                f"{key}: {corpus}'s genders are {' and '.join(spec.genders)} (or both), not "
                f"{', '.join(other)}; sweep=gender_grid chooses them by corpus"
            )


KFOLD_SPLIT_KEYS = ("kfold.k", "kfold.seed", "kfold.pool", "kfold.groups")


def write_sweep_folds(config: DictConfig, sweep_dir: Path) -> None:
    """For a sweep over ``kfold.fold``: draw the folds as its jobs will and write
    ``folds.csv`` (unless the sweep also varies how folds are drawn, when each job's
    ``split.csv`` is the record)."""
    if not swept_values(config, "kfold.fold"):
        return
    varied = [k for k in KFOLD_SPLIT_KEYS if len(swept_values(config, k)) > 1]
    if varied:
        log.info("the sweep varies %s: no single folds.csv (see each job's split.csv)",
                 ", ".join(varied))  # fmt: skip
        return
    kfold = KFold.from_config({**config.kfold, "fold": 0})
    datamodule = instantiate(config.dataset, _convert_="all")
    datamodule.prepare_data()
    records = datamodule.records()
    folds, _ = assign(records, kfold)
    for fold in range(kfold.k):  # every job's validation share must hold both classes
        job_split(records, replace(kfold, fold=fold, select_on_test=False))
    write_folds(sweep_dir / FOLDS_FILE, folds)
    log.info("%d folds of %d vlogs in %s", kfold.k, len(folds), sweep_dir / FOLDS_FILE)


def failed_jobs(rows: Iterable) -> int:
    return sum(len(row.failed) for row in rows)


class SweepCallback(Callback):
    """Checks a multirun before it starts and summarises it when it ends."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            check_sweep(config)
            write_sweep_folds(config, Path(config.hydra.sweep.dir))
        except (DynMultiDepError, ValueError) as err:
            exit_with_error(err)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            rows = write_summary(sweep_dir)
        except DynMultiDepError as err:  # e.g. no job ran at all
            exit_with_error(err)
        print((sweep_dir / "summary.md").read_text())
        log.info("summary in %s", sweep_dir / "summary.md")
        failed = failed_jobs(rows)
        if failed:
            print(f"error: {failed} job(s) failed: see {sweep_dir / 'summary.md'}", file=sys.stderr)
            sys.exit(1)
