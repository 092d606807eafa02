"""Synthetic vlog files for the tests and the extraction benchmark, encoded with PyAV:
a real face (scikit-image's astronaut photograph, a dev dependency) moving and
growing across the frames, blank seconds, and a generated voice whose voiced
and noisy halves alternate in every second."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
# The astronaut's face in scikit-image's photograph lies at about (179, 83)-(266, 170)
# (dlib's detection); the patch pasted into the frames is this crop around it.
PATCH_ROWS, PATCH_COLS = (40, 220), (140, 310)


def face_patch(scale: float) -> np.ndarray:
    """``(h, w, 3)`` uint8: the crop around the face, resized by ``scale`` (nearest)."""
    from skimage import data

    crop = data.astronaut()[PATCH_ROWS[0] : PATCH_ROWS[1], PATCH_COLS[0] : PATCH_COLS[1]]
    h, w = round(crop.shape[0] * scale), round(crop.shape[1] * scale)
    rows = np.minimum((np.arange(h) / scale).astype(int), crop.shape[0] - 1)
    cols = np.minimum((np.arange(w) / scale).astype(int), crop.shape[1] - 1)
    return crop[rows][:, cols]


@dataclass(frozen=True)
class VlogSpec:
    """What a test vlog shows: the face patch's box per second, or ``None`` on blank
    seconds. Within a second the frame stays the same."""

    seconds: float = 5.0
    width: int = 480
    height: int = 360
    fps: int = 10
    blank: tuple[int, ...] = (2,)
    shift: int = 24  # px the patch moves right per second
    growth: float = 0.08  # relative growth of the patch per second
    audio: bool = True
    video: bool = True
    pitch: float = 140.0  # Hz of the voice's fundamental
    audio_seconds: float | None = None  # the audio's length (default: ``seconds``)
    audio_start: float = 0.0  # when the audio stream starts, in seconds
    seed: int = 0
    boxes: dict = field(default_factory=dict, compare=False)

    def box(self, second: int) -> tuple[int, int, int, int] | None:
        """``(left, top, right, bottom)`` of the patch in second ``second``."""
        if second in self.blank:
            return None
        patch = face_patch(1.4 * (1 + self.growth) ** second)
        left, top = 20 + self.shift * second, 20
        return left, top, left + patch.shape[1], top + patch.shape[0]


def voice(spec: VlogSpec) -> np.ndarray:
    """``(S,)`` int16: a harmonic voice in the first half of every second, noise after."""
    rng = np.random.default_rng(spec.seed)
    seconds = spec.seconds if spec.audio_seconds is None else spec.audio_seconds
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = spec.pitch * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    harmonic = sum(np.sin(k * phase) / k for k in range(1, 9))
    voiced = (t % 1.0) < 0.5
    signal = np.where(voiced, 0.25 * harmonic, 0.01 * rng.standard_normal(len(t)))
    return np.round(np.clip(signal, -1, 1) * 32767).astype(np.int16)


def frame(spec: VlogSpec, second: int) -> np.ndarray:
    image = np.full((spec.height, spec.width, 3), 60, np.uint8)
    box = spec.box(second)
    if box is not None:
        patch = face_patch(1.4 * (1 + spec.growth) ** second)
        left, top, right, bottom = box
        image[top:bottom, left:right] = patch[: spec.height - top, : spec.width - left]
    return image


def write_video(path: Path, spec: VlogSpec = VlogSpec(), audio_codec: str = "pcm_s16le") -> Path:
    """Encode ``spec`` into ``path``: H.264 video and, by default, lossless PCM audio
    (``.mkv``; ``audio_codec="aac"`` for ``.mp4``, as vlogs are usually stored)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        # every stream is added before the first packet is muxed
        video = container.add_stream("libx264", rate=spec.fps) if spec.video else None
        if video is not None:
            video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        audio = None
        if spec.audio:
            audio = container.add_stream(audio_codec, rate=SAMPLE_RATE, layout="mono")
        if video is not None:
            cache: dict[int, np.ndarray] = {}
            for i in range(round(spec.seconds * spec.fps)):
                second = i // spec.fps
                if second not in cache:
                    cache[second] = frame(spec, second)
                image = av.VideoFrame.from_ndarray(cache[second], format="rgb24")
                container.mux(video.encode(image))
            container.mux(video.encode(None))
        if audio is not None:
            samples = voice(spec)
            first = round(spec.audio_start * SAMPLE_RATE)
            for start in range(0, len(samples), 1600):
                part = samples[None, start : start + 1600]
                if audio_codec == "pcm_s16le":
                    chunk = av.AudioFrame.from_ndarray(part, format="s16", layout="mono")
                else:  # e.g. AAC takes float planes
                    chunk = av.AudioFrame.from_ndarray(
                        part.astype(np.float32) / 32768, format="fltp", layout="mono"
                    )
                chunk.sample_rate = SAMPLE_RATE
                chunk.pts = first + start
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
    return path
