"""Training task: fit, pick the best checkpoint on validation, test it, write the results.

Run directory (``paths.output_dir``) after a run::

    .hydra/                  Hydra's record: config.yaml, hydra.yaml, overrides.yaml
    train.log                the run's log
    config_tree.log          the composed config, as printed at start
    checkpoints/             best (by ``callbacks.model_checkpoint.monitor``) and last.ckpt
    metrics.json             test report + best epoch, checkpoint, seed, provenance
                             (commit, versions, the scan and convolution kernels run);
                             regression runs: phq8_scale (the training fold's score mean,
                             std, median); written last: its presence means the run finished
    predictions.csv          one row per test vlog
    split.csv                k-fold jobs: id,role (train | valid | test) of every vlog used
    test_*.png               confusion matrix, ROC curve, reliability diagram, and the
                             gate weights by label (models with a gate)
    csv/ tensorboard/ wandb/ the selected loggers' files
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from dynmultidep.ops.backends import reset_record
from dynmultidep.protocols.kfold import SPLIT_FILE, apply_kfold, describe, write_split
from dynmultidep.tasks.checkpoint import read_checkpoint
from dynmultidep.tasks.module import plain
from dynmultidep.tasks.outputs.files import write_fold_outputs
from dynmultidep.tasks.run.builders import build_trainer
from dynmultidep.tasks.run.distributed import distributed_job
from dynmultidep.tasks.run.loggers import close_loggers
from dynmultidep.tasks.run.resume import check_same_config, checkpoint_to_resume
from dynmultidep.tasks.run.session import show_config

log = logging.getLogger(__name__)


def best_checkpoint(trainer: L.Trainer) -> tuple[str | None, float | None]:
    """``(path, score)`` of the best checkpoint by the monitored metric; without a
    monitored checkpoint callback, the latest checkpoint saved; ``(None, None)``
    without checkpointing."""
    callbacks = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]
    monitored = [c for c in callbacks if c.monitor is not None and c.best_model_path]
    if monitored:
        score = monitored[0].best_model_score
        return monitored[0].best_model_path, None if score is None else float(score)
    latest = [c.best_model_path or c.last_model_path for c in callbacks]
    return next((p for p in latest if p), None), None


def train(cfg: DictConfig) -> float | None:
    """Fit and test as configured; return ``cfg.optimized_metric`` (for sweepers).

    In a run directory that holds ``checkpoints/last.ckpt``, training continues from
    it (same config required); one that holds ``metrics.json`` is skipped
    (:mod:`dynmultidep.tasks.run.resume`).
    """
    out_dir = Path(cfg.paths.output_dir)
    run_config = plain(cfg)
    resume_from = checkpoint_to_resume(cfg.get("ckpt_path"), out_dir)
    if resume_from is not None:
        check_same_config(read_checkpoint(resume_from), resume_from, run_config)
    if (out_dir / "metrics.json").is_file():
        log.info("%s has finished (metrics.json exists): skipped", out_dir)
        return finished_value(out_dir / "metrics.json", cfg.get("optimized_metric"))
    if rank_zero_only.rank == 0:
        show_config(cfg, save_to=out_dir / "config_tree.log")
    L.seed_everything(cfg.seed, workers=True)
    reset_record()  # metrics.json names the kernels this run used
    datamodule = instantiate(cfg.dataset, _convert_="all")
    kfold = apply_kfold(datamodule, cfg.get("kfold"))
    if kfold is not None and rank_zero_only.rank == 0:
        write_split(out_dir / SPLIT_FILE, kfold[1])
    module = instantiate(cfg.module, model=cfg.model, run_config=run_config, _recursive_=False)
    trainer = build_trainer(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams({"dataset": plain(cfg.dataset), "seed": cfg.seed})
    if resume_from is not None:
        log.info("resuming training from %s", resume_from)
    try:
        with distributed_job():
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
            ckpt_path, best_score = best_checkpoint(trainer)
            if ckpt_path is None:
                log.warning("no checkpoint callback: testing the weights of the last epoch")
            trainer.test(
                module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True, verbose=False
            )
            extra = {
                "task": "train",
                "checkpoint": ckpt_path,
                "best_epoch": read_checkpoint(ckpt_path)["epoch"] if ckpt_path else None,
                "monitor": cfg.get("optimized_metric"),
                "best_score": best_score,
                "resumed_from": None if resume_from is None else str(resume_from),
            }
            if kfold is not None:
                extra["kfold"] = describe(*kfold)
            if module.closed_form_fit is not None:
                extra["closed_form_fit"] = module.closed_form_fit
            if module.objective.state() is not None:  # regression: the training fold's scores
                extra["phq8_scale"] = module.objective.state()
            if trainer.is_global_zero:
                write_fold_outputs(
                    module.test_predictions, out_dir, "test", seed=cfg.seed,
                    dataset=plain(cfg.dataset), model=plain(cfg.model), extra=extra,
                    loggers=trainer.loggers,
                )  # fmt: skip
    finally:
        close_loggers()
    return optimized_value(trainer, cfg.get("optimized_metric"), best_score)


def finished_value(metrics_path: Path, metric: str | None) -> float | None:
    """What a finished run returned to sweepers: its best score for ``metric``."""
    report = json.loads(metrics_path.read_text())
    if metric is None or report.get("monitor") != metric:
        return None
    return report.get("best_score")


def optimized_value(trainer: L.Trainer, metric: str | None, best: float | None) -> float | None:
    """The value a sweeper optimises: the best checkpoint's score, else the metric's
    last logged value."""
    if metric is None:
        return None
    if best is not None:
        return best
    value = trainer.callback_metrics.get(metric)
    return None if value is None or math.isnan(float(value)) else float(value)
