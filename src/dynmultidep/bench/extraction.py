"""Feature extraction speed against real time, on synthetic 720p vlogs.

The vlogs (:mod:`dynmultidep.features.synthetic_video`) are H.264 at 30 fps with
AAC audio, as vlogs are usually stored, with a face of about 120 px moving
across the frame. Three measurements, each in the same process:

* the stages of one vlog alone: decoding the frames, decoding the audio plus
  eGeMAPS, detecting faces and placing landmarks (also with the detector's
  options that trade speed for the smallest face found);
* one vlog end to end with one worker (the latency of scoring one recording);
* the whole set with the default number of workers (one per two cores): the
  throughput of building a corpus.

"x real time" is seconds of video per second of wall time.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from dynmultidep.features import media
from dynmultidep.features.corpus import default_workers, extract_corpus
from dynmultidep.features.pipeline import ExtractionSettings, Extractor
from dynmultidep.features.synthetic_video import VlogSpec, write_video
from dynmultidep.features.visual import LandmarkExtractor


def make_videos(folder: Path, count: int, seconds: float) -> list[Path]:
    """``count`` 720p vlogs of ``seconds``; two are encoded, the rest are copies."""
    paths = []
    for i in range(count):
        path = folder / f"vlog{i}.mp4"
        if i < 2:
            spec = VlogSpec(
                seconds=seconds, width=1280, height=720, fps=30, blank=(3,), shift=8,
                growth=0.0, seed=i, pitch=120 + 60 * i,
            )  # fmt: skip
            write_video(path, spec, audio_codec="aac")
        else:
            shutil.copy(paths[i % 2], path)
        paths.append(path)
    return paths


def _time(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def bench_extraction(count: int = 4, seconds: float = 60.0, workers: int | None = None) -> dict:
    workers = workers or default_workers()
    settings = ExtractionSettings()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        videos = make_videos(folder / "videos", count, seconds)
        extractor = Extractor(settings)
        first = videos[0]
        decode_s, frames = _time(lambda: list(media.video_frames(first)))
        audio_s, _ = _time(lambda: extractor.egemaps.frames(media.read_audio(first)))
        faces = []
        for label, upsample, height in (("", 0, None), (", --upsample 1", 1, None),
                                        (", --detect-height 360", 0, 360)):  # fmt: skip
            detector = LandmarkExtractor(upsample, height)
            took, found = _time(lambda d=detector: [d(gray) for _, gray in frames])
            faces.append({"stage": f"faces + landmarks (1 frame/s){label}", "seconds": took,
                          "found": sum(f is not None for f in found) / len(found)})  # fmt: skip
        one_s, features = _time(lambda: extractor(first))
        duration = features.duration
        corpus = extract_corpus(videos, folder / "corpus", settings, workers=workers)
    stages = [
        {"stage": "decode video frames", "seconds": decode_s},
        {"stage": "decode audio + eGeMAPS", "seconds": audio_s},
        *faces,
    ]
    for stage in stages:
        stage["x_realtime"] = duration / stage["seconds"]
    runs = [
        {"run": "one vlog, 1 worker", "videos": 1, "media_s": duration, "wall_s": one_s},
        {"run": f"{count} vlogs, default workers ({workers})", "videos": count,
         "media_s": corpus.media_seconds, "wall_s": corpus.wall_seconds},
    ]  # fmt: skip
    for run in runs:
        run["x_realtime"] = run["media_s"] / run["wall_s"]
    return {
        "video": "1280x720 H.264 30 fps, AAC 16 kHz mono",
        "seconds_per_vlog": seconds,
        "face_found": float(features.face_found.mean()),
        "stages": stages,
        "runs": runs,
    }
