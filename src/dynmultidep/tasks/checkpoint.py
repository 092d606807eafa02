"""Rebuilding a trained classifier and its feature normalisation from a checkpoint alone.

A checkpoint written by ``src/train.py`` holds, besides Lightning's usual
state, the classifier's hyper-parameters (model, optimiser and scheduler
configs), the training-fold feature statistics and the names of the visual
columns the model was trained on (the DataModule's state) and the whole run's
resolved config (``run_config``). Checkpoints are read with
``torch.load(weights_only=True)``: loading one never runs code from the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dynmultidep.data import DepressionDataModule, FeatureStandardizer
from dynmultidep.data.faces import FacePreparation
from dynmultidep.data.interviews.feature_sets import column_sets
from dynmultidep.data.interviews.prepare import InterviewOptions
from dynmultidep.data.openface import describe_columns
from dynmultidep.errors import CheckpointError, describe_error
from dynmultidep.tasks.module import DepressionClassifier

DATAMODULE_KEY = DepressionDataModule.__qualname__  # where Lightning saves its state
_REQUIRED = ("state_dict", "hyper_parameters")


def ckpt_path_of(cfg: DictConfig) -> str:
    """``cfg.ckpt_path``, or a :class:`CheckpointError` saying how to give it."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or cfg.get("ckpt_path") in (None, ""):
        raise CheckpointError("ckpt_path", "not given; pass ckpt_path=PATH/TO/FILE.ckpt")
    return str(cfg.ckpt_path)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents on the CPU; :class:`CheckpointError` if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        problem = f"cannot be read as a checkpoint ({describe_error(err)})"
        raise CheckpointError(path, problem) from None
    missing = [k for k in _REQUIRED if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing or "model" not in checkpoint["hyper_parameters"]:
        raise CheckpointError(
            path, f"not a DynMultiDep checkpoint (missing {', '.join(missing) or 'model config'})"
        )
    return checkpoint


def classifier_from_checkpoint(checkpoint: dict, path: str | Path) -> DepressionClassifier:
    """The trained classifier, in eval mode."""
    hparams = checkpoint["hyper_parameters"]
    try:
        module = DepressionClassifier(**hparams, run_config=checkpoint.get("run_config"))
        module.load_state_dict(checkpoint["state_dict"], strict=True)
        module.on_load_checkpoint(checkpoint)  # the tuned decision threshold, if any
    except (RuntimeError, TypeError, ValueError) as err:
        problem = str(err).splitlines()[0]
        raise CheckpointError(path, f"does not rebuild its model: {problem}") from None
    return module.eval()


def standardizer_state(checkpoint: dict) -> dict | None:
    """The training-fold feature statistics, or ``None`` if the run did not standardise."""
    return checkpoint.get(DATAMODULE_KEY, {}).get("standardizer")


def face_preparation(checkpoint: dict) -> FacePreparation:
    """How the training run prepared landmarks: their normalisation (``None``: as
    stored) and whether pose columns were kept (``False`` in older checkpoints)."""
    dataset = (checkpoint.get("run_config") or {}).get("dataset") or {}
    return FacePreparation(dataset.get("face_normalization"), bool(dataset.get("head_pose")))


def load_standardizer(checkpoint: dict) -> FeatureStandardizer | None:
    state = standardizer_state(checkpoint)
    if state is None:
        return None
    standardizer = FeatureStandardizer()
    standardizer.load_state_dict(state)
    return standardizer


def training_dataset_config(checkpoint: dict, path: str | Path) -> Mapping:
    """The dataset config the checkpoint's run trained on."""
    config = (checkpoint.get("run_config") or {}).get("dataset")
    if config is None:
        raise CheckpointError(path, "holds no run config; pass dataset=... to say what to evaluate")
    return config


def datamodule_for(
    checkpoint: dict, path: str | Path, dataset: Mapping | None = None
) -> DepressionDataModule:
    """A DataModule for ``dataset`` (default: the training run's), preparing features
    as in training: the training run's face normalisation and training-fold statistics."""
    config = dataset if dataset is not None else training_dataset_config(checkpoint, path)
    datamodule = instantiate(config, _convert_="all")
    # the landmarks are prepared as the model saw them in training, whatever the config says
    datamodule.faces = face_preparation(checkpoint)
    state = standardizer_state(checkpoint)
    if state is None:
        datamodule.standardizer = None  # the model was trained on raw features
    else:
        datamodule.standardizer = FeatureStandardizer()
        datamodule.load_state_dict({"standardizer": state})
    return datamodule


def check_widths(
    module: DepressionClassifier,
    datamodule: DepressionDataModule,
    path,
    names: Sequence[str] = ("audio_dim", "video_dim"),
) -> None:
    """The model's input widths (``names``) must match the corpus's."""
    model = module.hparams.model
    for name in names:
        want, have = model.get(name), getattr(datamodule, name)
        if want is not None and want != have:
            raise CheckpointError(
                path,
                f"the model takes {name}={want} but corpus {datamodule.spec.name!r} has {have}",
            )


def trained_visual_columns(checkpoint: dict) -> tuple[str, ...] | None:
    """The visual columns the model was trained on; ``None`` in checkpoints written
    before they were recorded."""
    columns = checkpoint.get(DATAMODULE_KEY, {}).get("visual_columns")
    return None if columns is None else tuple(columns)


def trained_extraction(checkpoint: dict) -> dict | None:
    """The extraction settings of the training corpus, when it was extracted from
    videos by :mod:`dynmultidep.features` (``None`` otherwise)."""
    return checkpoint.get(DATAMODULE_KEY, {}).get("extraction")


def check_visual_columns(
    checkpoint: dict, corpus: DepressionDataModule | Sequence[str], path: str | Path
) -> None:
    """The corpus's visual columns (a DataModule's, or the names themselves) must be
    those the model was trained on; checkpoints that do not record them pass."""
    trained = trained_visual_columns(checkpoint)
    have = tuple(corpus.video_columns if isinstance(corpus, DepressionDataModule) else corpus)
    if trained is not None and trained != have:
        raise CheckpointError(
            path,
            f"the model was trained on visual features {describe_columns(trained)} but the "
            f"corpus has {describe_columns(have)}; use a corpus prepared with the same sets",
        )


def trained_audio_columns(checkpoint: dict) -> tuple[str, ...] | None:
    """The audio columns (``set:column``) of the interview feature sets the model was
    trained on; ``None`` for the vlog corpora's fixed audio and older checkpoints."""
    columns = checkpoint.get(DATAMODULE_KEY, {}).get("audio_columns")
    return None if columns is None else tuple(columns)


def _sets(columns: Sequence[str]) -> str:
    return f"{', '.join(column_sets(columns))} ({len(columns)} columns)"


def interview_options(checkpoint: dict, corpus: str, path: str | Path) -> InterviewOptions:
    """How to prepare ``corpus`` sessions as the model's training corpus was: the feature
    sets of the columns the checkpoint records, and its run's ``participant_only``."""
    audio, visual = trained_audio_columns(checkpoint), trained_visual_columns(checkpoint)
    if audio is None or visual is None:
        problem = "records no interview feature sets (not trained on DAIC-WOZ or E-DAIC)"
        raise CheckpointError(path, f"{problem}; it cannot score {corpus} sessions")
    dataset = (checkpoint.get("run_config") or {}).get("dataset") or {}
    participant_only = bool((dataset.get("interview") or {}).get("participant_only", False))
    try:
        sets = column_sets(audio), column_sets(visual)
        options = InterviewOptions(corpus, *sets, participant_only)
        same = options.columns("audio") == audio and options.columns("visual") == visual
    except ValueError:
        same = False
    if not same:
        trained = f"audio sets {_sets(audio)} and visual sets {_sets(visual)}"
        raise CheckpointError(path, f"the model was trained on {trained}, which {corpus} lacks")
    return options
