"""VGGish's front end: waveform -> log-mel examples of 96 frames x 64 bands.

Follows AudioSet's ``vggish_input.py`` / ``mel_features.py`` (and their port in
torchvggish) step by step, so a checkpoint trained on those inputs sees the same
numbers here:

1. mono 16 kHz (channels averaged; the audio is decoded at 16 kHz, by FFmpeg in
   the extraction pipeline, and other rates are refused);
2. frames of 400 samples (25 ms) every 160 samples (10 ms), no padding, so a
   signal of ``S`` samples has ``1 + (S - 400) // 160`` frames;
3. periodic Hann window, ``|rfft|`` of length 512 -> 257 bins;
4. 64 triangular mel bands between 125 and 7500 Hz on the HTK mel scale
   (``1127 ln(1 + f / 700)``), triangles linear in mel, DC bin weight forced to 0;
5. ``log(mel + 0.01)``;
6. non-overlapping examples of 96 frames (0.96 s); an incomplete last example is
   dropped, so one example needs 400 + 95 * 160 = 15600 samples (0.975 s): a
   clip of exactly 0.96 s (15360 samples, 94 frames) gives none.

Everything is computed in float64, as the numpy original does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LogMelSettings:
    """The constants of VGGish's front end (AudioSet's ``vggish_params.py``).

    The functions here take them as ``settings``, defaulting to ``VGGISH_LOG_MEL``;
    ``as_dict()`` gives them as a plain dict for records. A corpus manifest does
    not hold them: it records the extraction settings (``audio="vggish"`` names
    this front end), not these numbers.
    """

    sample_rate: int = 16000  # Hz; the only rate the front end takes
    window_length: int = 400  # samples per STFT frame (25 ms)
    hop_length: int = 160  # samples between frames (10 ms)
    fft_length: int = 512  # next power of two above window_length -> 257 bins
    num_mel_bins: int = 64
    mel_min_hz: float = 125.0  # lower edge of the lowest band
    mel_max_hz: float = 7500.0  # upper edge of the highest band
    log_offset: float = 0.01  # log(mel + log_offset) keeps silence finite
    example_frames: int = 96  # frames per example, examples do not overlap (0.96 s)

    def as_dict(self) -> dict:
        return asdict(self)


VGGISH_LOG_MEL = LogMelSettings()


def hertz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``1127 ln(1 + hz / 700)``; same shape as ``hz``."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_filterbank(
    num_mel_bins: int = 64,
    num_spectrogram_bins: int = 257,
    sample_rate: int = 16000,
    lower_hz: float = 125.0,
    upper_hz: float = 7500.0,
) -> np.ndarray:
    """VGGish's triangular mel weights, ``(num_spectrogram_bins, num_mel_bins)``.

    ``mel = spectrum @ weights`` for a spectrum ``(F, num_spectrogram_bins)`` whose
    bins are spaced evenly from 0 Hz to Nyquist. Band ``i`` rises linearly in mel
    from edge ``i`` to its centre (edge ``i + 1``) and falls to edge ``i + 2``, the
    ``num_mel_bins + 2`` edges being evenly spaced in mel over ``[lower_hz,
    upper_hz]``. The DC bin gets weight 0 in every band (HTK leaves it out).
    """
    nyquist = sample_rate / 2.0
    if not 0.0 <= lower_hz < upper_hz <= nyquist:
        raise ValueError(f"need 0 <= lower_hz < upper_hz <= {nyquist}, got {lower_hz}, {upper_hz}")
    bins_mel = hertz_to_mel(np.linspace(0.0, nyquist, num_spectrogram_bins))[:, None]  # (K, 1)
    edges = np.linspace(hertz_to_mel(lower_hz), hertz_to_mel(upper_hz), num_mel_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]  # (M,) each
    rising = (bins_mel - lower) / (centre - lower)
    falling = (upper - bins_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (K, M)
    weights[0, :] = 0.0
    return weights


def num_frames(num_samples: int, settings: LogMelSettings = VGGISH_LOG_MEL) -> int:
    """STFT frames in ``num_samples`` samples at 16 kHz (no padding)."""
    if num_samples < settings.window_length:
        return 0
    return 1 + (num_samples - settings.window_length) // settings.hop_length


def num_examples(num_samples: int, settings: LogMelSettings = VGGISH_LOG_MEL) -> int:
    """Complete 96-frame examples in ``num_samples`` samples at 16 kHz."""
    return num_frames(num_samples, settings) // settings.example_frames


def example_span(settings: LogMelSettings = VGGISH_LOG_MEL) -> tuple[int, int]:
    """``(hop, length)`` in samples: example ``e`` reads samples ``[e*hop, e*hop + length)``.

    Examples start 96 * 160 = 15360 samples apart and read 15600 samples, so a
    waveform cut at ``e * hop`` with ``length - hop`` samples of overlap gives
    exactly the examples of the whole.
    """
    hop = settings.example_frames * settings.hop_length
    return hop, (settings.example_frames - 1) * settings.hop_length + settings.window_length


def to_mono(waveform: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float tensor ``(S,)`` from ``(S,)`` or ``(C, S)`` audio.

    Channels (the first axis, as PyAV and torchaudio lay them out) are averaged.
    Integer samples are scaled to [-1, 1) by their type's range (int16 / 32768),
    as ``vggish_input.wavfile_to_examples`` does; float samples are kept as they are.
    """
    x = torch.as_tensor(np.asarray(waveform) if not torch.is_tensor(waveform) else waveform)
    if not (x.dtype.is_floating_point or x.dtype in (torch.int8, torch.int16, torch.int32)):
        raise ValueError(f"audio samples must be float or signed integer, got {x.dtype}")
    if not x.dtype.is_floating_point:
        x = x.double() / float(2 ** (torch.iinfo(x.dtype).bits - 1))
    if x.dim() == 2:
        x = x.mean(dim=0)
    if x.dim() != 1:
        raise ValueError(f"audio must be (S,) or (C, S), got shape {tuple(x.shape)}")
    return x


def check_sample_rate(sample_rate: int, settings: LogMelSettings = VGGISH_LOG_MEL) -> None:
    """Refuse audio at another rate than the front end's: decode it at 16 kHz (the
    extraction pipeline has FFmpeg resample it, :mod:`dynmultidep.features.media`)."""
    if sample_rate != settings.sample_rate:
        raise ValueError(
            f"VGGish's front end takes {settings.sample_rate} Hz audio, got {sample_rate} Hz: "
            f"decode or resample it to {settings.sample_rate} Hz first"
        )


def log_mel(waveform_16k: torch.Tensor, settings: LogMelSettings = VGGISH_LOG_MEL) -> torch.Tensor:
    """Log-mel spectrogram ``(F, 64)`` float64 of a 16 kHz ``(S,)`` waveform.

    ``F = 1 + (S - 400) // 160``, or 0 when ``S < 400``.
    """
    x = waveform_16k.to(torch.float64)
    n_frames = num_frames(x.shape[0], settings)
    if n_frames == 0:
        return x.new_zeros((0, settings.num_mel_bins))
    frames = x.unfold(0, settings.window_length, settings.hop_length)  # (F, 400)
    window = torch.hann_window(settings.window_length, periodic=True, dtype=torch.float64)
    spectrum = torch.fft.rfft(frames * window, n=settings.fft_length).abs()  # (F, 257)
    weights = mel_filterbank(
        settings.num_mel_bins,
        spectrum.shape[1],
        settings.sample_rate,
        settings.mel_min_hz,
        settings.mel_max_hz,
    )
    mel = spectrum @ torch.from_numpy(weights).to(spectrum.device)  # (F, 64)
    return torch.log(mel + settings.log_offset)


def log_mel_examples(
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    settings: LogMelSettings = VGGISH_LOG_MEL,
) -> torch.Tensor:
    """VGGish's input examples ``(N, 96, 64)`` float32 from ``(S,)`` or ``(C, S)`` audio.

    ``waveform`` holds samples in [-1, 1] (integers are scaled, channels averaged,
    see :func:`to_mono`) at ``sample_rate`` Hz, which must be 16 kHz
    (:func:`check_sample_rate`). Example ``e`` covers frames
    ``96e .. 96e + 95``, i.e. 0.96 s from ``0.96 e`` s. ``N = F // 96`` with ``F``
    the STFT frames: 0 for audio shorter than 0.975 s (an exact 0.96 s gives 94
    frames, hence none), 10 for 10 s. The whole spectrogram is held in memory;
    :func:`~dynmultidep.features.vggish.vggish_embeddings` works through long
    audio a batch of examples at a time.
    """
    check_sample_rate(sample_rate, settings)
    x = to_mono(waveform)
    spec = log_mel(x, settings)
    n = spec.shape[0] // settings.example_frames
    examples = spec[: n * settings.example_frames].reshape(
        n, settings.example_frames, settings.num_mel_bins
    )
    return examples.float()
