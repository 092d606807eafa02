"""Decoding a vlog's file with PyAV: its audio as 16 kHz mono samples and one
video frame per step.

PyAV bundles FFmpeg, so any container and codec FFmpeg reads works (.mp4,
.mov, .mkv, .webm, ...) with no system package. Every problem with a file is a
:class:`~dynmultidep.errors.DataError` naming it: not a media file, corrupt, no
audio or no video stream, or shorter than one step.

Time zero of each stream is its first decoded sample or frame, so a container's
start offset does not shift the steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynmultidep.errors import DataError
from dynmultidep.features import import_extra

SAMPLE_RATE = 16_000  # Hz: what openSMILE's eGeMAPS and VGGish expect
VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp",
)  # fmt: skip


@dataclass(frozen=True)
class MediaInfo:
    """What a vlog file holds; ``duration`` in seconds, per stream."""

    path: Path
    audio_seconds: float
    video_seconds: float
    fps: float
    width: int
    height: int

    def steps(self, rate: float = 1.0) -> int:
        """Whole steps of ``1 / rate`` s that both streams cover."""
        return int(np.floor(min(self.audio_seconds, self.video_seconds) * rate + 1e-6))


def _problem(err: Exception) -> str:
    text = (str(err).splitlines() or [""])[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _open(path: Path):
    av = import_extra("av")
    if not path.is_file():
        raise DataError(path, "video file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise DataError(path, f"not a video file FFmpeg can read ({_problem(err)})") from None


def _stream(container, kind: str, path: Path):
    streams = getattr(container.streams, kind)
    if not streams:
        raise DataError(path, f"has no {kind} stream")
    return streams[0]


def read_audio(path: str | Path) -> np.ndarray:
    """The first audio stream as ``(S,)`` float32 mono samples at :data:`SAMPLE_RATE`.

    FFmpeg's resampler mixes the channels down and converts the rate.
    """
    av = import_extra("av")
    path = Path(path)
    with _open(path) as container:
        stream = _stream(container, "audio", path)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except av.FFmpegError as err:
            raise DataError(path, f"corrupt audio stream ({_problem(err)})") from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if not np.isfinite(samples).all():
        raise DataError(path, "audio decodes to NaN or Inf samples")
    return samples.astype(np.float32, copy=False)


def probe(path: str | Path) -> MediaInfo:
    """Stream durations and frame size, from the container's header (no decoding)."""
    path = Path(path)
    with _open(path) as container:
        audio = _stream(container, "audio", path)
        video = _stream(container, "video", path)

        def seconds(stream) -> float:
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / 1_000_000  # microseconds
            return 0.0

        fps = float(video.average_rate or video.guessed_rate or 0.0)
        return MediaInfo(
            path,
            seconds(audio),
            seconds(video),
            fps,
            video.codec_context.width,
            video.codec_context.height,
        )


def video_frames(path: str | Path, rate: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """``(k, gray)`` for each step ``k``: the frame on screen at ``k / rate`` s,
    as ``(H, W)`` uint8 luma.

    The frame on screen at time ``t`` is the last one whose presentation time is
    at most ``t``; a step past the last frame's display end is not yielded. Only
    the chosen frames are converted, so the cost is the decoder's.
    """
    av = import_extra("av")
    path = Path(path)
    with _open(path) as container:
        stream = _stream(container, "video", path)
        stream.thread_type = "AUTO"  # frame-threaded decoding; frames still arrive in order
        frame_seconds = 1.0 / float(stream.average_rate or 25)
        eps = 1e-6
        start = None
        previous = None  # (time, frame)
        step = 0
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if start is None:
                    start = frame.time
                t = frame.time - start
                while previous is not None and t > step / rate + eps:
                    yield step, previous[1].to_ndarray(format="gray")
                    step += 1
                previous = (t, frame)
        except av.FFmpegError as err:
            raise DataError(path, f"corrupt video stream ({_problem(err)})") from None
        if previous is None:
            raise DataError(path, "video stream has no frames")
        end = previous[0] + frame_seconds
        while step / rate < end - eps:
            yield step, previous[1].to_ndarray(format="gray")
            step += 1
