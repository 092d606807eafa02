"""Prediction task: probabilities for unlabelled vlogs in a corpus layout.

This is a research tool, not a diagnostic device: its outputs say how a model
trained on one vlog corpus scores other recordings, nothing about a person.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from dynmultidep.data import PadCollate, VlogDataset, get_corpus, load_vlogs
from dynmultidep.data.faces import normalize_faces
from dynmultidep.errors import DataError
from dynmultidep.experiment.builders import build_trainer
from dynmultidep.experiment.checkpoint import (
    ckpt_path_of,
    classifier_from_checkpoint,
    face_normalization,
    load_standardizer,
    read_checkpoint,
    training_dataset_config,
)
from dynmultidep.experiment.predictions import Predictions
from dynmultidep.experiment.session import show_config

log = logging.getLogger(__name__)

DISCLAIMER = (
    "DynMultiDep is a research tool, not a diagnostic device: these scores are not "
    "a clinical assessment of anyone."
)


def predict(cfg: DictConfig) -> Predictions:
    """Score every vlog found at ``cfg.input``; write ``cfg.output`` (a CSV)."""
    ckpt_path = ckpt_path_of(cfg)
    if OmegaConf.is_missing(cfg, "input"):
        raise DataError("input", "not given; pass input=DIR_OR_FILE (vlogs in a corpus layout)")
    checkpoint = read_checkpoint(ckpt_path)
    show_config(cfg)
    print(DISCLAIMER)
    module = classifier_from_checkpoint(checkpoint, ckpt_path)
    corpus = cfg.get("corpus") or training_dataset_config(checkpoint, ckpt_path)["corpus"]
    spec = get_corpus(corpus)
    records = spec.unlabelled_records(cfg.input)
    vlogs = load_vlogs(records, spec.audio_dim, spec.video_dim, index_name=str(cfg.input))
    vlogs = sorted(normalize_faces(vlogs, face_normalization(checkpoint)), key=lambda v: v.length)
    loader = DataLoader(
        VlogDataset(vlogs),
        batch_size=cfg.batch_size,
        collate_fn=PadCollate(load_standardizer(checkpoint)),
    )
    trainer = build_trainer(cfg)
    parts = trainer.predict(module, dataloaders=loader)
    predictions = Predictions.concatenate(parts)
    output = Path(cfg.output)
    predictions.to_csv(output)
    log.info("%d vlogs scored; predictions in %s", len(vlogs), output)
    print(DISCLAIMER)
    return predictions
