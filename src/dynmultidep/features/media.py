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

from dynmultidep.errors import DataError, describe_error
from dynmultidep.features import import_extra

SAMPLE_RATE = 16_000  # Hz: what openSMILE's eGeMAPS and VGGish expect
VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp",
)  # fmt: skip


@dataclass(frozen=True)
class MediaInfo:
    """What a vlog file's header says, in seconds.

    ``audio_seconds`` / ``video_seconds`` are the streams' own durations, ``None``
    where the container gives none per stream (Matroska, WebM);
    ``container_seconds`` is the whole file's. ``origin`` is the earlier of the
    two streams' start times: time zero of both, so a stream that starts late
    keeps its offset against the other.
    """

    path: Path
    audio_seconds: float | None
    video_seconds: float | None
    container_seconds: float | None
    origin: float

    def declared_seconds(self) -> float | None:
        """The longest duration the header declares."""
        known = [s for s in (self.audio_seconds, self.video_seconds, self.container_seconds) if s]
        return max(known) if known else None


def _open(path: Path):
    av = import_extra("av")
    if not path.is_file():
        raise DataError(path, "video file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise DataError(path, f"not a video file FFmpeg can read ({describe_error(err)})") from None


def _stream(container, kind: str, path: Path):
    streams = getattr(container.streams, kind)
    if not streams:
        raise DataError(path, f"has no {kind} stream")
    return streams[0]


def read_audio(path: str | Path, origin: float = 0.0) -> np.ndarray:
    """The first audio stream as ``(S,)`` float32 mono samples at :data:`SAMPLE_RATE`,
    sample 0 at time ``origin`` (seconds; see :attr:`MediaInfo.origin`).

    FFmpeg's resampler mixes the channels down and converts the rate. Audio that
    starts after ``origin`` is preceded by silence; samples before it are dropped.
    """
    av = import_extra("av")
    path = Path(path)
    with _open(path) as container:
        stream = _stream(container, "audio", path)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        start = None
        try:
            for frame in container.decode(stream):
                if start is None and frame.time is not None:
                    start = frame.time
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except av.FFmpegError as err:
            raise DataError(path, f"corrupt audio stream ({describe_error(err)})") from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if not np.isfinite(samples).all():
        raise DataError(path, "audio decodes to NaN or Inf samples")
    shift = round(((start or origin) - origin) * SAMPLE_RATE)
    if shift > 0:
        samples = np.concatenate([np.zeros(shift, np.float32), samples])
    elif shift < 0:
        samples = samples[-shift:]
    return samples.astype(np.float32, copy=False)


def probe(path: str | Path) -> MediaInfo:
    """Stream durations and start times, from the header (no decoding)."""
    path = Path(path)
    with _open(path) as container:
        audio = _stream(container, "audio", path)
        video = _stream(container, "video", path)

        def seconds(stream, value) -> float | None:
            if value is None or stream.time_base is None:
                return None
            return float(value * stream.time_base)

        starts = [seconds(s, s.start_time) for s in (audio, video)]
        starts = [s for s in starts if s is not None]
        return MediaInfo(
            path,
            seconds(audio, audio.duration),
            seconds(video, video.duration),
            None if container.duration is None else container.duration / 1_000_000,
            min(starts) if starts else 0.0,
        )


class VideoFrames:
    """``(k, gray)`` for each step ``k``: the frame on screen at ``origin + k / rate``
    s, as ``(H, W)`` uint8 luma; after iterating, :attr:`seconds` is the video's
    end (its last frame's display end) counted from ``origin``.

    The frame on screen at time ``t`` is the last one whose presentation time is
    at most ``t`` (the first frame stands for any time before it); steps from the
    video's end on are not yielded. Only the chosen frames are converted, so the
    cost is the decoder's. Variable frame rates need nothing special.
    """

    def __init__(self, path: str | Path, rate: float = 1.0, origin: float = 0.0):
        self.path = Path(path)
        self.rate = rate
        self.origin = origin
        self.seconds: float | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        av = import_extra("av")
        path, rate = self.path, self.rate
        with _open(path) as container:
            stream = _stream(container, "video", path)
            stream.thread_type = "AUTO"  # frame-threaded decoding; frames arrive in order
            frame_seconds = 1.0 / float(stream.average_rate or 25)
            eps = 1e-6
            previous = None  # (time, frame)
            step = 0
            try:
                for frame in container.decode(stream):
                    if frame.time is None:
                        continue
                    t = frame.time - self.origin
                    while previous is not None and t > step / rate + eps:
                        yield step, previous[1].to_ndarray(format="gray")
                        step += 1
                    previous = (t, frame)
            except av.FFmpegError as err:
                raise DataError(path, f"corrupt video stream ({describe_error(err)})") from None
            if previous is None:
                raise DataError(path, "video stream has no frames")
            self.seconds = previous[0] + frame_seconds
            while step / rate < self.seconds - eps:
                yield step, previous[1].to_ndarray(format="gray")
                step += 1


def video_frames(path: str | Path, rate: float = 1.0, origin: float = 0.0) -> VideoFrames:
    """The frames of each step (:class:`VideoFrames`)."""
    return VideoFrames(path, rate, origin)
