"""Reading an interview release: a synthetic twin of the release's size prepared
cold (every session file parsed and aggregated per second), then found in the cache.

The twin is the one ``dataset=synthetic_{corpus} dataset.synthetic.preset={preset}``
trains on, generated under ``data/`` on first use (not timed: the twin stands in for
a downloaded release) and kept. The cold reading goes to a fresh cache folder, with
the corpus config's feature sets and its ``interview.workers`` processes; the file
parser's two paths are timed on the release's largest file beside it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate

from dynmultidep.bench import compose_train
from dynmultidep.data.interviews.prepare import prepare
from dynmultidep.data.interviews.release import find_sessions
from dynmultidep.data.interviews.tables import parse_table, parse_table_reference

READ_TARGET_S = 120.0  # a full-size DAIC-WOZ twin, read cold on 2 cores
# how the readers of feature_sets.py call the parser on each audio layout: sep, header, skip
_AUDIO_PARSE = {"covarep": (",", False, 0), "headerless": (",", False, 0),
                "opensmile": (";", True, 1)}  # fmt: skip


def bench_interview_reading(conf_dir: str | Path, corpora: tuple[str, ...] = ("daic_woz",),
                            preset: str = "full") -> list[dict]:  # fmt: skip
    """One row per corpus: the twin's size, its cold and cached reading times, and the
    two parsers on its largest feature file."""
    return [_read(conf_dir, corpus, preset) for corpus in corpora]


def _read(conf_dir: str | Path, corpus: str, preset: str) -> dict:
    cfg = compose_train(conf_dir, [f"dataset=synthetic_{corpus}",
                                   f"dataset.synthetic.preset={preset}"])  # fmt: skip
    datamodule = instantiate(cfg.dataset, _convert_="all")
    started = time.perf_counter()
    datamodule.prepare_data()  # generates the twin if absent
    generated_s = time.perf_counter() - started
    release, options = datamodule.root, datamodule.interview
    workers = int(datamodule.interview_settings.get("workers", 2))
    sessions = find_sessions(release)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        prepared = prepare(release, options, cache, workers)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        again = prepare(release, options, cache, workers)
        cached_s = time.perf_counter() - started
        assert again == prepared
        seconds = sum(np.load(path, mmap_mode="r").shape[0]
                      for path in (prepared / "audio").glob("*.npy"))  # fmt: skip
    largest = max(sessions.values(), key=lambda s: s.source.stat().st_size if s.source.is_file()
                  else 0)  # fmt: skip
    parse = _parsers(largest, options)
    return {
        "corpus": corpus, "preset": preset, "sessions": len(sessions),
        "hours": seconds / 3600, "release_gb": _size(release) / 1e9,
        "sets": {"audio": list(options.audio), "visual": list(options.visual)},
        "workers": workers, "generated_s": generated_s, "cold_s": cold_s,
        "cached_s": cached_s, **parse,
    }  # fmt: skip


def _parsers(session, options) -> dict:
    """The kernel and the reference on the session's first audio set's file (the
    release's largest: COVAREP in DAIC-WOZ), best of three each."""
    feature_set = options.sets("audio")[0]
    name = feature_set.file_names(session.id)[0]
    data = session.read([name])[name]
    times = {}
    for label, parse in (("kernel", parse_table), ("reference", parse_table_reference)):
        best = np.inf
        for _ in range(3):
            started = time.perf_counter()
            parse(data, Path(name), *_AUDIO_PARSE[feature_set.layout])
            best = min(best, time.perf_counter() - started)
        times[label] = best
    return {"parsed_file": name, "parsed_mb": len(data) / 1e6,
            "kernel_s": times["kernel"], "reference_s": times["reference"]}  # fmt: skip


def _size(release: Path) -> int:
    return sum(path.stat().st_size for path in release.rglob("*") if path.is_file())
