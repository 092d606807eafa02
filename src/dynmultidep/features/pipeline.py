"""One vlog file -> its audio and visual feature arrays, both of the same length.

A vlog of ``D`` seconds gives ``T = floor(D * rate)`` steps (``rate`` = 1: one
row per whole second, D-Vlog's layout), where ``D`` is the shorter of its audio
and video streams. Audio is decoded and described in a thread beside the video
(openSMILE, FFmpeg and dlib release the GIL), so one vlog keeps two cores busy.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dynmultidep.data.faces import faces_found
from dynmultidep.errors import DataError
from dynmultidep.features import media
from dynmultidep.features.acoustic import UNVOICED, EgemapsExtractor, aggregate_steps
from dynmultidep.features.visual import COLUMNS, LandmarkExtractor

AUDIO_FEATURES = ("egemaps", "vggish")


@dataclass(frozen=True)
class ExtractionSettings:
    """Everything that changes the extracted values (recorded in the corpus manifest).

    Args:
        audio: ``egemaps`` (D-Vlog: 25 LLDs per step) or ``vggish`` (LMVD: 128-d
            embeddings per 0.96 s, needs ``vggish_checkpoint``).
        rate: steps per second of the eGeMAPS rows and of the sampled frames.
        unvoiced: how a step averages the voiced-only descriptors
            (:mod:`.acoustic`).
        upsample, detect_height: face detector options (:mod:`.visual`).
        vggish_postprocess: PCA-whiten and quantise VGGish embeddings as
            AudioSet's released ones.
    """

    audio: str = "egemaps"
    rate: float = 1.0
    unvoiced: str = "exclude"
    upsample: int = 0
    detect_height: int | None = None
    vggish_postprocess: bool = False

    def __post_init__(self):
        if self.audio not in AUDIO_FEATURES:
            raise ValueError(
                f"audio must be one of {', '.join(AUDIO_FEATURES)}, got {self.audio!r}"
            )
        if self.unvoiced not in UNVOICED:
            raise ValueError(f"unvoiced must be one of {', '.join(UNVOICED)}")
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate}")
        if self.upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {self.upsample}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VlogFeatures:
    """One vlog's arrays: ``audio (T_a, Da)`` and ``visual (T, 136)`` float64,
    with ``T_a = T`` for eGeMAPS (VGGish rows are 0.96 s long)."""

    audio: np.ndarray
    visual: np.ndarray
    duration: float  # seconds: the shorter stream

    @property
    def face_found(self) -> np.ndarray:
        """``(T,)`` bool: steps whose frame had a face."""
        return faces_found(self.visual)


class Extractor:
    """Turns vlog files into :class:`VlogFeatures`; holds the loaded models.

    Args:
        settings: what to extract.
        predictor: path of dlib's shape predictor (default: found installed).
        vggish_checkpoint, vggish_pca: VGGish weights (and PCA parameters) the
            user supplies, for ``settings.audio == "vggish"``.
    """

    def __init__(
        self,
        settings: ExtractionSettings,
        predictor: str | Path | None = None,
        vggish_checkpoint: str | Path | None = None,
        vggish_pca: str | Path | None = None,
    ):
        self.settings = settings
        self.landmarks = LandmarkExtractor(settings.upsample, settings.detect_height, predictor)
        self.vggish = None
        if settings.audio == "egemaps":
            self.egemaps = EgemapsExtractor()
        else:
            from dynmultidep.features.vggish import load_vggish

            if vggish_checkpoint is None:
                raise DataError(
                    "--vggish-checkpoint",
                    "VGGish features need the network's weights, which no package ships: "
                    "pass the torchvggish checkpoint (vggish-10086976.pth) you downloaded",
                )
            self.vggish = load_vggish(
                vggish_checkpoint, pca_path=vggish_pca, postprocess=settings.vggish_postprocess
            )

    def _audio(self, path: Path, origin: float) -> tuple[float, object]:
        """``(seconds, described)``: eGeMAPS frames or VGGish embeddings of the audio."""
        samples = media.read_audio(path, origin)
        seconds = len(samples) / media.SAMPLE_RATE
        if self.vggish is not None:
            from dynmultidep.features.vggish import vggish_embeddings

            return seconds, vggish_embeddings(self.vggish, samples, media.SAMPLE_RATE)
        return seconds, self.egemaps.frames(samples)

    def __call__(
        self, path: str | Path, on_step: Callable[[int, int], None] | None = None
    ) -> VlogFeatures:
        """Extract the vlog at ``path``; ``on_step(done, total)`` reports video steps."""
        path = Path(path)
        rate = self.settings.rate
        info = media.probe(path)  # fails fast without both streams
        declared = info.declared_seconds()
        expected = int(np.floor((declared or 0) * rate + 1e-6))  # for progress only
        frames = media.video_frames(path, rate, info.origin)
        with ThreadPoolExecutor(1) as pool:
            audio_job = pool.submit(self._audio, path, info.origin)
            rows = []  # a failure here waits for the audio thread, then propagates
            for _, gray in frames:
                points = self.landmarks(gray)
                rows.append(np.zeros(len(COLUMNS)) if points is None else points)
                if on_step is not None:
                    on_step(len(rows), max(expected, len(rows)))
            audio_seconds, described = audio_job.result()
        check_complete(path, info, audio_seconds, frames.seconds, 1 / rate)
        duration = min(audio_seconds, frames.seconds)
        steps = int(np.floor(duration * rate + 1e-6))
        if steps == 0:
            raise DataError(path, f"shorter than one step ({1 / rate:g} s): nothing to extract")
        visual = np.asarray(rows[:steps], dtype=np.float64)
        if self.vggish is None:
            starts, values = described
            audio = aggregate_steps(starts, values, steps, rate, self.settings.unvoiced)
        else:
            from dynmultidep.features.mel import num_examples

            # the examples that end within the vlog's duration
            kept = num_examples(int(round(duration * media.SAMPLE_RATE)))
            audio = np.asarray(described, dtype=np.float64)[:kept]
        return VlogFeatures(audio, visual, duration)


def check_complete(
    path: Path, info: media.MediaInfo, audio_seconds: float, video_seconds: float, step: float
) -> None:
    """Refuse a file whose streams decode to less than its header declares: each
    stream against its own duration where the container gives one, the longer
    stream against the container's (a margin of a step or 2%)."""
    declared = info.declared_seconds() or 0.0
    margin = max(step, 0.02 * declared)
    short = [
        (got, want)
        for got, want in (
            (audio_seconds, info.audio_seconds),
            (video_seconds, info.video_seconds),
            (max(audio_seconds, video_seconds), info.container_seconds),
        )
        if want is not None and got < want - margin
    ]
    if short:
        got, want = short[0]
        raise DataError(
            path,
            f"truncated or corrupt: {got:.1f} s of the {want:.1f} s its header declares decode",
        )
