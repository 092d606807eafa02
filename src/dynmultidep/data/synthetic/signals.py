"""Feature streams of one synthetic vlog, with a planted temporal pattern.

What a model has to find: short *episodes* (8 to 20 steps) in which a few
acoustic descriptors and the mouth landmarks oscillate through one full
period. Episodes come as a Poisson process, about 7 times as often in
depressed vlogs (``EPISODE_RATE``), so the label is learnable but not
certain: a short vlog may show none, a long normal one several. Each
waveform sums to zero, so a vlog's time-averaged features carry no trace of
it: a model must look at how features change in time. An episode shows in
the audio, the video, or both.

Around it, the streams look like the real features: per-speaker offsets and
smooth noise for the acoustic descriptors; a 68-point face moving in pixel
coordinates for the landmarks; runs of frames where no face was found
(all-zero rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPISODE_RATE = {0: 0.003, 1: 0.04}  # expected episodes per step, by label
EPISODE_STEPS = (8, 20)  # shortest and longest episode
AUDIO_AMPLITUDE = 3.0  # in units of each descriptor's noise scale
MOUTH_AMPLITUDE = 0.5  # lip opening, in units of half the face width
PATTERN_FEATURES = 6  # acoustic descriptors an episode moves
NO_FACE_PROBABILITY = 0.3  # share of vlogs with runs of no-face frames
N_LANDMARKS = 68
MOUTH = slice(48, 68)


def _feature_table(dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed per-descriptor means, scales and the episode direction.

    They are the same for every vlog and seed, as the meaning of a column is.
    """
    rng = np.random.default_rng(2022 + dim)
    means = rng.uniform(-20.0, 40.0, dim)
    scales = np.exp(rng.uniform(np.log(0.05), np.log(8.0), dim))
    direction = np.zeros(dim)
    chosen = rng.choice(dim, PATTERN_FEATURES, replace=False)
    direction[chosen] = rng.choice([-1.0, 1.0], PATTERN_FEATURES)
    return means, scales, direction


def _face_template() -> np.ndarray:
    """``(68, 2)`` landmarks of a frontal face in units of half its width
    (x to the right, y down), in the usual 68-point order."""

    def arc(cx, cy, rx, ry, start, stop, count):
        t = np.linspace(start, stop, count)
        return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)

    def ring(cx, cy, rx, ry, count):
        return arc(cx, cy, rx, ry, np.pi, 3 * np.pi, count + 1)[:-1]

    parts = [
        arc(0.0, -0.1, 1.0, 1.1, np.pi, 0.0, 17)[::-1] * [1, -1] + [0, -0.2],  # jaw 0-16
        arc(-0.5, -0.5, 0.3, 0.08, np.pi, 2 * np.pi, 5),  # right brow 17-21
        arc(0.5, -0.5, 0.3, 0.08, np.pi, 2 * np.pi, 5),  # left brow 22-26
        np.stack([np.zeros(4), np.linspace(-0.35, 0.05, 4)], axis=1),  # nose bridge 27-30
        np.stack([np.linspace(-0.2, 0.2, 5), np.full(5, 0.15)], axis=1),  # nostrils 31-35
        ring(-0.4, -0.28, 0.16, 0.06, 6),  # right eye 36-41
        ring(0.4, -0.28, 0.16, 0.06, 6),  # left eye 42-47
        ring(0.0, 0.5, 0.4, 0.15, 12),  # outer lips 48-59
        ring(0.0, 0.5, 0.28, 0.06, 8),  # inner lips 60-67
    ]
    return np.concatenate(parts)


AUDIO_TABLES = {dim: _feature_table(dim) for dim in (25, 128)}
FACE = _face_template()
# +1 for lip points below the mouth centre, -1 above: an opening moves them apart.
MOUTH_OPENING = np.sign(FACE[MOUTH, 1] - 0.5)


def smooth_noise(rng: np.random.Generator, steps: int, dim: int, phi: float) -> np.ndarray:
    """``(steps, dim)`` unit-variance AR(1)-like noise (truncated filter, 24 taps)."""
    taps = phi ** np.arange(24)
    taps /= np.sqrt((taps**2).sum())
    white = rng.standard_normal((steps + len(taps) - 1, dim))
    out = np.zeros((steps, dim))
    for k, tap in enumerate(taps):
        out += tap * white[len(taps) - 1 - k : len(taps) - 1 - k + steps]
    return out


def draw_person(rng: np.random.Generator) -> tuple[float, np.ndarray, np.ndarray]:
    """Where one vlog's face sits in the frame: its half width (pixels), its centre
    ``(2,)`` (pixels) and this person's face shape ``(68, 2)`` (face template units)."""
    half_width = rng.uniform(70.0, 140.0)
    centre = np.array([rng.uniform(500.0, 780.0), rng.uniform(280.0, 440.0)])
    shape = FACE + 0.03 * rng.standard_normal(FACE.shape)
    return half_width, centre, shape


def draw_face_found(rng: np.random.Generator, steps: int) -> np.ndarray:
    """``(steps,)`` bool: False in runs of frames where no face was found (in a
    share ``NO_FACE_PROBABILITY`` of vlogs, 1 to 3 runs of up to 5% of the vlog)."""
    face_found = np.ones(steps, dtype=bool)
    if rng.random() < NO_FACE_PROBABILITY:
        for _ in range(int(rng.integers(1, 4))):
            run = int(rng.integers(1, max(2, steps // 20) + 1))
            start = int(rng.integers(0, steps - run + 1))
            face_found[start : start + run] = False
    return face_found


@dataclass
class VlogStreams:
    audio: np.ndarray  # (T_a, Da) float64, descriptor values
    landmarks: np.ndarray  # (T_v, 68, 2) float64, pixels
    face_found: np.ndarray  # (T_v,) bool
    episodes: int  # planted episodes (for inspection, not written)
    informative: str = "both"  # modality carrying the label's cue: audio | video | both


def draw_streams(
    rng: np.random.Generator, label: int, audio_steps: int, video_steps: int, audio_dim: int
) -> VlogStreams:
    """Draw one vlog's audio descriptors and face landmarks."""
    steps = max(audio_steps, video_steps)
    means, scales, direction = AUDIO_TABLES[audio_dim]
    speaker = means + 0.5 * scales * rng.standard_normal(audio_dim)
    audio = speaker + scales * smooth_noise(rng, steps, audio_dim, phi=0.7)

    half_width, centre, shape = draw_person(rng)
    head = 6.0 * smooth_noise(rng, steps, 2, phi=0.9)  # head motion, pixels
    zoom = 1.0 + 0.02 * smooth_noise(rng, steps, 1, phi=0.9)
    offsets = np.broadcast_to(shape, (steps, N_LANDMARKS, 2)).copy()

    count = int(rng.poisson(EPISODE_RATE[label] * steps))
    for _ in range(count):
        length = int(min(rng.integers(EPISODE_STEPS[0], EPISODE_STEPS[1] + 1), steps))
        start = int(rng.integers(0, steps - length + 1))
        wave = np.sin(2 * np.pi * np.arange(length) / length)  # sums to zero
        channel = rng.random()  # 0-0.2 audio only, 0.2-0.4 video only, else both
        if channel < 0.2 or channel >= 0.4:
            audio[start : start + length] += AUDIO_AMPLITUDE * np.outer(wave, direction * scales)
        if channel >= 0.2:
            offsets[start : start + length, MOUTH, 1] += MOUTH_AMPLITUDE * np.outer(
                wave, MOUTH_OPENING
            )

    landmarks = centre + half_width * zoom[:, :, None] * offsets + head[:, None, :]
    landmarks += 0.8 * rng.standard_normal(landmarks.shape)

    face_found = draw_face_found(rng, steps)
    landmarks[~face_found] = 0.0
    return VlogStreams(
        audio=audio[:audio_steps],
        landmarks=landmarks[:video_steps],
        face_found=face_found[:video_steps],
        episodes=count,
    )


def landmark_rows(landmarks: np.ndarray) -> np.ndarray:
    """``(T, 68, 2)`` -> ``(T, 136)`` in block order ``x0..x67, y0..y67``."""
    return np.concatenate([landmarks[..., 0], landmarks[..., 1]], axis=1)
