"""Prediction task: probabilities (or PHQ-8 scores) for unlabelled vlogs in a corpus
layout, video files, or the sessions of a DAIC-WOZ or E-DAIC release.

This is a research tool, not a diagnostic device: its outputs say how a model
trained on one vlog corpus scores other recordings, nothing about a person.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from dynmultidep.data import PadCollate, VlogDataset, get_corpus, load_vlogs
from dynmultidep.data.faces import faces_found
from dynmultidep.data.feature_record import corpus_visual_columns, read_feature_record
from dynmultidep.data.interviews.prepare import InterviewOptions, prepare_unlabelled
from dynmultidep.errors import CheckpointError, DataError
from dynmultidep.evaluation.predictions import Predictions
from dynmultidep.features.for_checkpoint import is_video_input
from dynmultidep.tasks.checkpoint import (
    check_visual_columns,
    ckpt_path_of,
    classifier_from_checkpoint,
    face_preparation,
    interview_options,
    load_standardizer,
    read_checkpoint,
    trained_audio_columns,
    trained_extraction,
    trained_visual_columns,
    training_dataset_config,
)
from dynmultidep.tasks.outputs.timeline import (
    Timeline,
    step_contributions,
    write_timeline_csv,
    write_timeline_png,
)
from dynmultidep.tasks.run.builders import build_trainer
from dynmultidep.tasks.run.session import show_config

log = logging.getLogger(__name__)

TIMELINES = ("videos", "all", "none")

DISCLAIMER = (
    "DynMultiDep is a research tool, not a diagnostic device: these scores are not "
    "a clinical assessment of anyone."
)


def predict(cfg: DictConfig) -> Predictions:
    """Score every vlog found at ``cfg.input``; write ``cfg.output`` (a CSV).

    Video files (or a folder of them) are first extracted into a cache
    (:mod:`dynmultidep.features.for_checkpoint`), and each gets a timeline of
    per-second contributions (``timelines/{id}.png`` and ``.csv`` beside the
    output; ``timeline=all`` draws them for feature inputs too). For a checkpoint
    trained on an interview corpus, ``cfg.input`` may be a release (or its sessions),
    prepared first with the checkpoint's feature sets (:func:`_interview_sessions`).
    """
    ckpt_path = ckpt_path_of(cfg)
    if OmegaConf.is_missing(cfg, "input"):
        raise DataError("input", "not given; pass input=DIR_OR_FILE (vlogs in a corpus layout)")
    if cfg.timeline not in TIMELINES:
        raise ValueError(f"timeline must be one of {', '.join(TIMELINES)}, got {cfg.timeline!r}")
    checkpoint = read_checkpoint(ckpt_path)
    show_config(cfg)
    print(DISCLAIMER)
    module = classifier_from_checkpoint(checkpoint, ckpt_path)
    corpus = cfg.get("corpus") or training_dataset_config(checkpoint, ckpt_path)["corpus"]
    failures = []
    seconds_per_step = 1.0  # every corpus: one row per second (LMVD's audio: 0.96 s)
    videos = is_video_input(cfg.input)
    if videos:
        extracted = _extract(cfg, checkpoint, ckpt_path, corpus)
        failures = extracted.report.of("failed")
        seconds_per_step = 1 / extracted.settings.rate
        spec = get_corpus(extracted.layout)
        records = [r for r in spec.unlabelled_records(extracted.root) if r.id in extracted.ids]
        source = str(extracted.root)
    else:
        spec = get_corpus(corpus)
        source = str(cfg.input)
        if spec.interview is not None:
            source = str(_interview_sessions(cfg, checkpoint, ckpt_path, corpus))
        records = spec.unlabelled_records(source)
    columns = corpus_visual_columns(spec.find_vlogs(Path(source))[0], spec)
    check_visual_columns(checkpoint, columns, ckpt_path)
    audio = trained_audio_columns(checkpoint) if spec.interview is not None else None
    audio_dim = spec.audio_dim if audio is None else len(audio)
    raw = load_vlogs(records, audio_dim, len(columns), index_name=source)
    vlogs = sorted(face_preparation(checkpoint).apply(raw), key=lambda v: v.length)
    collate = PadCollate(load_standardizer(checkpoint))
    loader = DataLoader(VlogDataset(vlogs), batch_size=cfg.batch_size, collate_fn=collate)
    trainer = build_trainer(cfg)
    parts = trainer.predict(module, dataloaders=loader)
    predictions = Predictions.concatenate(parts)
    output = Path(cfg.output)
    predictions.to_csv(output)
    log.info("%d vlogs scored; predictions in %s", len(vlogs), output)
    if cfg.timeline == "all" or (cfg.timeline == "videos" and videos):
        folder = output.parent / "timelines"
        raw_by_id = {v.id: v for v in raw}
        write_timelines(module, vlogs, raw_by_id, collate, folder, seconds_per_step)
        log.info("timelines of per-second contributions in %s", folder)
    print(DISCLAIMER)
    if failures:
        raise DataError(
            failures[0].source,
            f"{len(failures)} of the videos could not be extracted (the others are scored in "
            f"{output}); first: {failures[0].message}",
        )
    return predictions


def _interview_sessions(cfg: DictConfig, checkpoint: dict, ckpt_path: str, corpus: str) -> Path:
    """The prepared interview sessions to score: ``cfg.input`` where it is a prepared corpus
    made as the checkpoint's training corpus was, else the sessions at ``cfg.input`` (a
    release, a folder of ``{id}_P`` archives or folders, or one) prepared so in
    ``cfg.interview.cache_dir`` (:func:`.prepare_unlabelled`)."""
    options = interview_options(checkpoint, corpus, ckpt_path)
    root, ids = get_corpus(corpus).find_vlogs(Path(cfg.input))
    if not ids:
        settings = cfg.interview
        return prepare_unlabelled(cfg.input, options, settings.cache_dir, settings.workers)
    recorded = (read_feature_record(root) or {}).get("interview")
    try:
        same = recorded is not None and InterviewOptions(**recorded) == options
    except (TypeError, ValueError):
        same = False
    if not same:
        raise CheckpointError(ckpt_path, f"the model was trained on {corpus} prepared with "
                              f"{_described(options)}, {root} was not; give the release "
                              "(input=RELEASE) to prepare it so")  # fmt: skip
    return Path(cfg.input)


def _described(options: InterviewOptions) -> str:
    only = ", participant turns only" if options.participant_only else ""
    return f"audio sets {','.join(options.audio)}, visual sets {','.join(options.visual)}{only}"


def _extract(cfg: DictConfig, checkpoint: dict, ckpt_path: str, corpus: str):
    """Extract the videos at ``cfg.input`` as the checkpoint's training features were."""
    from dynmultidep.features.for_checkpoint import extract_for_checkpoint, settings_for

    options = cfg.extract
    settings = settings_for(
        corpus, trained_extraction(checkpoint), trained_visual_columns(checkpoint), ckpt_path
    )
    return extract_for_checkpoint(
        cfg.input, settings, options.cache_dir, ckpt_path, workers=options.workers,
        predictor=options.predictor, vggish_checkpoint=options.vggish_checkpoint,
        vggish_pca=options.vggish_pca,
    )  # fmt: skip


def write_timelines(
    module, vlogs, raw: dict, collate: PadCollate, folder: Path, seconds_per_step: float = 1.0
) -> None:
    """``{id}.png`` and ``{id}.csv`` in ``folder`` for each vlog (see :mod:`.timeline`)."""
    device = next(module.net.parameters()).device  # where the trainer left the model
    scale = getattr(module.objective, "scale", None)  # regression: the PHQ-8 score's units
    unit = 1.0 if scale is None else scale.std  # contributions to the score, in points
    for vlog in vlogs:
        batch = collate([VlogDataset([vlog])[0]])
        logits, audio, video = step_contributions(
            module.net, *(batch[k].to(device) for k in ("audio", "video", "lengths"))
        )
        timeline = Timeline(
            vlog.id,
            None if scale is not None else float(torch.sigmoid(logits[0])),
            float(logits[0]),
            unit * audio[0].cpu().numpy(),
            unit * video[0].cpu().numpy(),
            faces_found(raw[vlog.id].video),
            seconds_per_step,
            None if scale is None else float(scale.scores(logits[0])),
        )
        write_timeline_png(folder / f"{vlog.id}.png", timeline)
        write_timeline_csv(folder / f"{vlog.id}.csv", timeline)
