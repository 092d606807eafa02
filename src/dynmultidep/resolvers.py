"""OmegaConf resolvers the configs use; registered when the ``dynmultidep`` package is
imported, so any code that composes the project's configs has them.

* ``${corpus_video_dim:ROOT,DEFAULT}``: the number of visual columns recorded in
  ``ROOT/features.json`` (:mod:`dynmultidep.data.feature_record`), or ``DEFAULT``
  where the folder or its record does not exist yet (a synthetic corpus not yet
  generated, a config composed on another machine). ``conf/dataset/lmvd.yaml``
  reads the corpus's visual width with it.
* ``${model_video_dim:COLUMNS,FACE_NORMALIZATION,HEAD_POSE}``: the model's visual
  input width: the corpus's ``COLUMNS``, plus the head-pose columns that a face
  normalisation keeps when ``HEAD_POSE`` is true (:mod:`dynmultidep.data.faces`).
  The dataset configs set ``video_dim`` with it, which model configs read.
* ``${interview_dim:CORPUS,SETS}``: the width of an interview corpus's feature
  ``SETS`` (a list of names, :mod:`dynmultidep.data.interviews.feature_sets`) side
  by side; ``conf/dataset/daic_woz.yaml`` and ``edaic.yaml`` read both widths with it.
* ``${task_metric:TASK}``: the validation metric that selects checkpoints by default for
  ``module.task`` ``TASK`` (:data:`TASK_METRICS`); ``conf/train.yaml`` sets
  ``optimized_metric`` with it.
* ``${task_metric:TASK,BINARY}``: the same, with ``BINARY`` in place of the binary
  task's default (the published recipes keep the seed's ``val/avg4``; regression still
  selects on ``val/rmse``).
* ``${metric_mode:METRIC}``: ``min`` for a metric where lower is better (an error or a
  loss, :data:`LOWER_IS_BETTER`), else ``max``; the checkpoint and early-stopping
  callbacks read their ``mode`` with it, so they follow whatever ``optimized_metric`` is.
* ``${metric_direction:METRIC}``: the same as Optuna names it, ``minimize`` or
  ``maximize``; ``conf/hparams_search/optuna.yaml`` reads its ``direction`` with it.
* ``${gender_grid:CORPUS}``: the gender choices of ``CORPUS`` as a sweep, ``both,m,f``
  or DAIC-WOZ's ``both,0,1`` (:attr:`~dynmultidep.data.corpora.CorpusSpec.genders`);
  ``conf/sweep/gender_grid.yaml`` sweeps both genders with it.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from dynmultidep.data.corpora import get_corpus
from dynmultidep.data.faces import FacePreparation
from dynmultidep.data.feature_record import recorded_video_dim
from dynmultidep.data.interviews.feature_sets import FEATURE_SETS, parse_sets, set_columns


def model_video_dim(columns: int, face_normalization: str | None, head_pose: bool) -> int:
    return int(columns) + len(FacePreparation(face_normalization, bool(head_pose)).pose_columns)


def interview_dim(corpus: str, sets) -> int:
    names = [str(name) for name in sets]
    known = FEATURE_SETS[corpus]
    modality = known[names[0]].modality if names and names[0] in known else "audio"
    return len(set_columns(parse_sets(corpus, modality, names)))


# module.task -> its default optimized_metric (tasks/objectives.py: TASKS)
TASK_METRICS = {"binary": "val/macro_f1", "regression": "val/rmse"}
LOWER_IS_BETTER = ("rmse", "mae", "ece", "loss")  # last part of a metric's name


def task_metric(task: str, binary: str | None = None) -> str:
    if task not in TASK_METRICS:
        raise ValueError(f"module.task must be one of {', '.join(TASK_METRICS)}, got {task!r}")
    return binary if task == "binary" and binary else TASK_METRICS[task]


def metric_mode(metric: str) -> str:
    name = str(metric).rsplit("/", 1)[-1]
    return "min" if name in LOWER_IS_BETTER or name.endswith("_loss") else "max"


def metric_direction(metric: str) -> str:
    return {"min": "minimize", "max": "maximize"}[metric_mode(metric)]


def gender_grid(corpus: str) -> str:
    return ",".join(("both", *get_corpus(corpus).genders))


RESOLVERS = {
    "corpus_video_dim": recorded_video_dim,
    "model_video_dim": model_video_dim,
    "interview_dim": interview_dim,
    "task_metric": task_metric,
    "metric_mode": metric_mode,
    "metric_direction": metric_direction,
    "gender_grid": gender_grid,
}


def register_resolvers() -> None:
    for name, resolver in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)


register_resolvers()
