"""The corpora the project reads, by name: feature widths and index reader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.data import dvlog, lmvd
from dynmultidep.data.records import Record


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    audio_dim: int  # Da, features per audio step
    video_dim: int  # Dv, features per video step
    has_gender: bool
    read_index: Callable[[str | Path], list[Record]]


CORPORA = {
    "dvlog": CorpusSpec("dvlog", dvlog.AUDIO_DIM, dvlog.VIDEO_DIM, True, dvlog.read_dvlog_index),
    "lmvd": CorpusSpec("lmvd", lmvd.AUDIO_DIM, lmvd.VIDEO_DIM, False, lmvd.read_lmvd_index),
}


def get_corpus(name: str) -> CorpusSpec:
    try:
        return CORPORA[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}") from None
