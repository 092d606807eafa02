"""Files a run leaves for one evaluated fold: ``metrics.json``, ``predictions.csv``, plots."""

from __future__ import annotations

import logging
from pathlib import Path

from dynmultidep.evaluation.predictions import Predictions
from dynmultidep.evaluation.reports import fold_report, print_report, write_json
from dynmultidep.tasks.outputs.plots import save_figures
from dynmultidep.tasks.run.runinfo import provenance

log = logging.getLogger(__name__)

DATASET_KEYS = ("corpus", "root", "train_gender", "test_gender")


def write_fold_outputs(
    predictions: Predictions,
    out_dir: Path,
    fold: str,
    *,
    seed: int,
    dataset: dict,
    model: dict,
    extra: dict,
    loggers=(),
) -> dict:
    """Print the fold's report and write its files into ``out_dir``; return the
    ``metrics.json`` payload. ``dataset`` and ``model`` are the resolved configs
    used. ``metrics.json`` is written last: its presence means the run finished."""
    report = fold_report(predictions, seed=seed)
    protocol = (extra.get("kfold") or {}).get("protocol")
    print_report(report, title=f"{fold} fold" + (f" ({protocol})" if protocol else ""))
    predictions.to_csv(out_dir / "predictions.csv")
    save_figures(predictions, out_dir, prefix=fold, loggers=loggers)
    payload = {
        "fold": fold,
        **report,
        **extra,
        "seed": seed,
        "dataset": {k: dataset.get(k) for k in DATASET_KEYS},
        "model": model.get("_target_"),
        **provenance(),
    }
    write_json(out_dir / "metrics.json", payload)
    log.info("results in %s", out_dir)
    return payload
