"""The corpora the project reads, by name: default feature widths and index reader.

D-Vlog and LMVD are read where they lie; the interview corpora (DAIC-WOZ, E-DAIC) are
read from their release into a prepared corpus first (:mod:`.interviews`), whose
readers these specs hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dynmultidep.data import dvlog, lmvd
from dynmultidep.data.interviews import corpus as interview
from dynmultidep.data.interviews.prepare import InterviewOptions
from dynmultidep.data.records import Record
from dynmultidep.errors import DataError


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    audio_dim: int  # Da, features per audio step
    video_dim: int  # Dv, features per video step, unless the corpus's features.json says other
    video_columns: tuple[str, ...]  # their names, as the corpus's documentation gives them
    has_gender: bool
    read_index: Callable[[str | Path], list[Record]]
    find_vlogs: Callable[[Path], tuple[Path, list[str]]]  # path -> (root, ids), no index needed
    audio_path: Callable[[Path, str], Path]
    video_path: Callable[[Path, str], Path]
    # an interview corpus: ``root`` is its release, read into a prepared corpus whose
    # widths follow the chosen feature sets (these options by default)
    interview: InterviewOptions | None = None
    # the values of its records' gender (``train_gender``/``test_gender`` choose among
    # them and ``both``): DAIC-WOZ's codes 0 and 1, the others' m and f
    genders: tuple[str, ...] = ("m", "f")

    def unlabelled_records(self, path: str | Path) -> list[Record]:
        """Records (``label=-1``, no fold) of the vlogs at ``path`` in this corpus's
        layout: a corpus folder or, for prediction, one vlog."""
        if not Path(path).exists():
            raise DataError(path, "not found")
        root, ids = self.find_vlogs(Path(path))
        if not ids:
            raise DataError(path, f"no vlog features in the {self.name} layout found here")
        return [
            Record(i, -1, "predict", None, self.audio_path(root, i), self.video_path(root, i))
            for i in ids
        ]


CORPORA = {
    "dvlog": CorpusSpec(
        "dvlog",
        dvlog.AUDIO_DIM,
        dvlog.VIDEO_DIM,
        dvlog.VIDEO_COLUMNS,
        True,
        dvlog.read_dvlog_index,
        dvlog.find_dvlog_vlogs,
        dvlog.audio_path,
        dvlog.video_path,
    ),
    "lmvd": CorpusSpec(
        "lmvd",
        lmvd.AUDIO_DIM,
        lmvd.VIDEO_DIM,
        lmvd.VIDEO_COLUMNS,
        False,
        lmvd.read_lmvd_index,
        lmvd.find_lmvd_vlogs,
        lmvd.audio_path,
        lmvd.video_path,
    ),
}
for _name, _audio, _visual in (("daic_woz", ("covarep",), ("aus", "gaze", "pose")),
                               ("edaic", ("egemaps",), ("aus", "gaze", "pose"))):  # fmt: skip
    _options = InterviewOptions(_name, _audio, _visual)
    CORPORA[_name] = CorpusSpec(
        _name,
        len(_options.columns("audio")),
        len(_options.columns("visual")),
        _options.columns("visual"),
        True,
        interview.read_prepared_index,
        interview.find_prepared_sessions,
        interview.audio_path,
        interview.video_path,
        _options,
        ("0", "1") if _name == "daic_woz" else ("m", "f"),
    )


def get_corpus(name: str) -> CorpusSpec:
    try:
        return CORPORA[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}") from None
