"""Evaluation task: a checkpoint on one fold, with the same report files as training.

Only ``ckpt_path`` is needed: the model, the feature statistics and (unless
``dataset=...`` is given) the dataset config come from the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from dynmultidep.data.records import FOLDS
from dynmultidep.ops.backends import reset_record
from dynmultidep.protocols.kfold import apply_kfold
from dynmultidep.tasks.checkpoint import (
    check_visual_columns,
    check_widths,
    ckpt_path_of,
    classifier_from_checkpoint,
    datamodule_for,
    read_checkpoint,
)
from dynmultidep.tasks.module import plain
from dynmultidep.tasks.outputs.files import write_fold_outputs
from dynmultidep.tasks.run.builders import build_trainer
from dynmultidep.tasks.run.loggers import close_loggers
from dynmultidep.tasks.run.session import show_config


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate ``cfg.ckpt_path`` on fold ``cfg.fold``; return the ``metrics.json`` payload."""
    if cfg.fold not in FOLDS:
        raise ValueError(f"fold must be one of {', '.join(FOLDS)}, got {cfg.fold!r}")
    out_dir = Path(cfg.paths.output_dir)
    ckpt_path = ckpt_path_of(cfg)
    checkpoint = read_checkpoint(ckpt_path)
    show_config(cfg, save_to=out_dir / "config_tree.log")
    L.seed_everything(cfg.seed, workers=True)
    module = classifier_from_checkpoint(checkpoint, ckpt_path)
    dataset = cfg.get("dataset")
    datamodule = datamodule_for(checkpoint, ckpt_path, dataset)
    if dataset is None:  # a k-fold job's checkpoint: its own folds, not the corpus's
        apply_kfold(datamodule, (checkpoint.get("run_config") or {}).get("kfold"))
    # another corpus shows in the audio width; other visual sets of one corpus are named
    check_widths(module, datamodule, ckpt_path, names=("audio_dim",))
    check_visual_columns(checkpoint, datamodule, ckpt_path)
    check_widths(module, datamodule, ckpt_path, names=("video_dim",))
    datamodule.prepare_data()
    trainer = build_trainer(cfg)
    reset_record()  # metrics.json names the kernels this evaluation used
    try:
        trainer.test(module, dataloaders=datamodule.fold_dataloader(cfg.fold), verbose=False)
        used = plain(dataset) if dataset is not None else checkpoint["run_config"]["dataset"]
        payload = {}
        extra = {"task": "eval", "checkpoint": str(ckpt_path),
                 "checkpoint_epoch": checkpoint.get("epoch")}  # fmt: skip
        if module.objective.state() is not None:  # regression: the training fold's scores
            extra["phq8_scale"] = module.objective.state()
        if trainer.is_global_zero:
            payload = write_fold_outputs(
                module.test_predictions, out_dir, cfg.fold, seed=cfg.seed, dataset=used,
                model=module.hparams.model, loggers=trainer.loggers, extra=extra,
            )  # fmt: skip
    finally:
        close_loggers()
    return payload
