"""OmegaConf resolvers the configs use; registered when the ``dynmultidep`` package is
imported, so any code that composes the project's configs has them.

* ``${corpus_video_dim:ROOT,DEFAULT}``: the number of visual columns recorded in
  ``ROOT/features.json`` (:mod:`dynmultidep.data.feature_record`), or ``DEFAULT``
  where the folder or its record does not exist yet (a synthetic corpus not yet
  generated, a config composed on another machine). ``conf/dataset/lmvd.yaml``
  sets ``video_dim: ${corpus_video_dim:${.root},136}``, which model configs read.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from dynmultidep.data.feature_record import recorded_video_dim

RESOLVERS = {"corpus_video_dim": recorded_video_dim}


def register_resolvers() -> None:
    for name, resolver in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)


register_resolvers()
