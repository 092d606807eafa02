"""VGGish's front end: waveform -> log-mel examples of 96 frames x 64 bands.

Follows AudioSet's ``vggish_input.py`` / ``mel_features.py`` (and their port in
torchvggish) step by step, so a checkpoint trained on those inputs sees the same
numbers here:

1. mono 16 kHz (channels averaged; other rates resampled, see :func:`resample`);
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

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LogMelSettings:
    """The constants of VGGish's front end (AudioSet's ``vggish_params.py`` and its resampler).

    The functions here take them as ``settings``, defaulting to ``VGGISH_LOG_MEL``;
    ``as_dict()`` gives them as a plain dict for records. A corpus manifest does
    not hold them: it records the extraction settings (``audio="vggish"`` names
    this front end), not these numbers.
    """

    sample_rate: int = 16000  # Hz; input of other rates is resampled to this
    window_length: int = 400  # samples per STFT frame (25 ms)
    hop_length: int = 160  # samples between frames (10 ms)
    fft_length: int = 512  # next power of two above window_length -> 257 bins
    num_mel_bins: int = 64
    mel_min_hz: float = 125.0  # lower edge of the lowest band
    mel_max_hz: float = 7500.0  # upper edge of the highest band
    log_offset: float = 0.01  # log(mel + log_offset) keeps silence finite
    example_frames: int = 96  # frames per example, examples do not overlap (0.96 s)
    resampler: str = "windowed sinc, resampy 0.4 kaiser_best: 50 zeros, rolloff 0.9173, beta 12.98"

    def as_dict(self) -> dict:
        return asdict(self)


VGGISH_LOG_MEL = LogMelSettings()

# Windowed-sinc resampler with the filter resampy >= 0.3 ships as ``kaiser_best`` (the
# default of the ``resampy.resample`` that AudioSet's and torchvggish's front ends call;
# constants fitted to its table to 1e-15): sinc cut off at ROLLOFF x the lower Nyquist,
# tapered by a Kaiser window over +-NUM_ZEROS zero crossings.
_NUM_ZEROS = 50
_ROLLOFF = 0.9173473712608761
_KAISER_BETA = 12.98458524704003
_MAX_KERNEL_TAPS = 32_000_000  # (16000 / g) phases x (sr / g + taps) for g = gcd(sr, 16000)
_MIN_PHASES = 32  # see resample()
_RESAMPLE_BLOCK = 1 << 20  # output samples per conv1d call: bounds memory on long audio


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


def _kaiser_sinc(distance: torch.Tensor, scale: float) -> torch.Tensor:
    """Filter weight for input samples ``distance`` input periods away from an output.

    ``scale = min(1, sr_out / sr_in)`` lowers the cut-off when downsampling and
    widens the support to ``+-NUM_ZEROS / scale`` input samples.
    """
    tau = scale * distance  # in zero crossings of the (scaled) sinc
    inside = tau.abs() <= _NUM_ZEROS
    ratio = (tau / _NUM_ZEROS).clamp(-1.0, 1.0)
    taper = torch.special.i0(_KAISER_BETA * torch.sqrt(1.0 - ratio**2)) / torch.special.i0(
        torch.tensor(_KAISER_BETA, dtype=torch.float64)
    )
    weight = scale * _ROLLOFF * torch.sinc(_ROLLOFF * tau) * taper
    return torch.where(inside, weight, torch.zeros_like(weight))


def resample(waveform: torch.Tensor, sample_rate: int, target_rate: int = 16000) -> torch.Tensor:
    """Band-limited resampling of ``(S,)`` to ``(S * target_rate // sample_rate,)``.

    A polyphase windowed sinc with resampy's ``kaiser_best`` filter (what
    AudioSet's VGGish code calls), evaluated exactly instead of read from a
    table: output sample ``n`` sits at input time ``n * sample_rate /
    target_rate`` and sums its neighbours within 50 zero crossings, zeros beyond
    the ends. resampy steps through its table with a truncated increment when
    downsampling, so the two differ by up to ~1e-3 on full-band noise at 48 kHz
    (~1e-4 on tones, ~1e-6 when upsampling). With ``g = gcd(sample_rate,
    target_rate)`` there are ``target_rate / g`` filter phases (a multiple of them,
    at least 32), applied as one ``conv1d`` per block of output, so memory stays
    bounded on long audio. Rates sharing few factors with 16 kHz (e.g. 44101 Hz)
    would need a huge kernel and are refused; resample those beforehand. Same
    rate: returned unchanged. :func:`resample_reference` is the plain direct sum
    this must agree with.
    """
    if sample_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {sample_rate} -> {target_rate}")
    if sample_rate == target_rate:
        return waveform
    g = math.gcd(int(sample_rate), int(target_rate))
    # At least _MIN_PHASES output phases (48 kHz: 32 / 96, not 1 / 3) so that the
    # convolution below is a well-shaped matrix product.
    group = -(-_MIN_PHASES // (target_rate // g))
    up, down = group * target_rate // g, group * sample_rate // g
    scale = min(1.0, up / down)
    reach = math.ceil(_NUM_ZEROS / scale)  # input samples each side of an output
    taps = down + 2 * reach + 1
    if up * taps > _MAX_KERNEL_TAPS:
        raise ValueError(
            f"resampling {sample_rate} Hz -> {target_rate} Hz needs a {up} x {taps} kernel; "
            "resample the audio to 16 kHz beforehand"
        )
    # Output q * up + j reads input q * down + m, m in [-reach, down + reach], at
    # distance j * down / up - m: taps[j, m + reach].
    phase = torch.arange(up, dtype=torch.float64)[:, None] * (down / up)
    offset = torch.arange(-reach, down + reach + 1, dtype=torch.float64)[None, :]
    weights = _kaiser_sinc(phase - offset, scale)  # (up, taps)
    # The stride-`down` filter as a stride-1 one over `down` interleaved input
    # channels, which conv1d runs far faster: kernel[j, r, l] = weights[j, l * down + r].
    span = -(-taps // down)
    weights = torch.nn.functional.pad(weights, (0, span * down - taps))
    kernel = weights.reshape(up, span, down).transpose(1, 2).contiguous()  # (up, down, span)

    n_out = waveform.shape[0] * target_rate // sample_rate
    n_cols = -(-n_out // up)  # polyphase columns q
    length = (n_cols + span - 1) * down
    padded = torch.nn.functional.pad(
        waveform.to(torch.float64), (reach, length - reach - waveform.shape[0])
    )
    channels = padded.reshape(-1, down).T  # (down, n_cols + span - 1)
    out = []
    block_cols = max(1, _RESAMPLE_BLOCK // up)
    for q0 in range(0, n_cols, block_cols):
        q1 = min(n_cols, q0 + block_cols)
        block = channels[:, q0 : q1 + span - 1]
        cols = torch.nn.functional.conv1d(block[None], kernel)[0]  # (up, q1 - q0)
        out.append(cols.T.reshape(-1).to(waveform.dtype))
    return torch.cat(out)[:n_out] if out else waveform.new_zeros(0)


def resample_reference(
    waveform: torch.Tensor, sample_rate: int, target_rate: int = 16000
) -> torch.Tensor:
    """The reference of :func:`resample`: the same filter as a plain direct sum.

    Output sample ``n`` sits at input time ``t = n * sample_rate / target_rate``
    and is ``sum_k x[k] * _kaiser_sinc(t - k, scale)`` over the input samples
    ``k`` within ``NUM_ZEROS / scale`` of ``t``, ``x[k] = 0`` outside ``[0, S)``.
    No phases, blocks or reshapes: one row of weights per output sample, held all
    at once, ``(S_out, 2 * NUM_ZEROS / scale)`` float64. Slow and memory-hungry;
    for tests only.
    """
    if sample_rate == target_rate:
        return waveform
    x = waveform.to(torch.float64)
    scale = min(1.0, target_rate / sample_rate)
    reach = math.ceil(_NUM_ZEROS / scale)
    n_out = x.shape[0] * target_rate // sample_rate
    n = torch.arange(n_out, dtype=torch.int64)
    # t = left + frac with left = floor(t), exactly, in integers.
    left = n * sample_rate // target_rate  # (S_out,)
    frac = (n * sample_rate - left * target_rate).to(torch.float64) / target_rate
    # Every k with |t - k| <= reach lies in [left - reach, left + reach + 1].
    offset = torch.arange(-reach, reach + 2, dtype=torch.int64)  # (W,)
    k = left[:, None] + offset[None, :]  # (S_out, W) input indices
    weights = _kaiser_sinc(frac[:, None] - offset[None, :].to(torch.float64), scale)
    inside = (k >= 0) & (k < x.shape[0])
    samples = torch.where(inside, x[k.clamp(0, max(x.shape[0] - 1, 0))], 0.0)
    return (weights * samples).sum(dim=1).to(waveform.dtype)


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
    see :func:`to_mono`) at ``sample_rate`` Hz; other rates than 16 kHz are
    resampled first (:func:`resample`). Example ``e`` covers frames
    ``96e .. 96e + 95``, i.e. 0.96 s from ``0.96 e`` s. ``N = F // 96`` with ``F``
    the STFT frames: 0 for audio shorter than 0.975 s (an exact 0.96 s gives 94
    frames, hence none), 10 for 10 s. The whole spectrogram is held in memory;
    :func:`~dynmultidep.features.vggish.vggish_embeddings` works through long
    audio a batch of examples at a time.
    """
    x = resample(to_mono(waveform), sample_rate, settings.sample_rate)
    spec = log_mel(x, settings)
    n = spec.shape[0] // settings.example_frames
    examples = spec[: n * settings.example_frames].reshape(
        n, settings.example_frames, settings.num_mel_bins
    )
    return examples.float()
