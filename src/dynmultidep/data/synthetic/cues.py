"""Cue families: what separates depressed from normal vlogs in a synthetic corpus.

``bursts``, the default corpus's cue, plants short oscillation episodes
(:mod:`.signals`). The other families draw a vlog from a few latent processes
and change one property of them in depressed vlogs, each after a documented
behavioural marker of depression:

============== ============================================================ ==========
family         depressed vlogs                                              cue in
============== ============================================================ ==========
flat_affect    lower temporal variability of the prosodic descriptors and   both
               of the facial expressions (``FLAT_AFFECT_FACTOR``)
slowed         the same variance, slower change (``SLOWED_PHI``)            both
pauses         longer silent pauses at the same share of silence            audio
one_modality   flat affect in one modality, chosen at random per vlog; the  one
               other modality is corrupted by noise whatever the label
cross_modal    mouth and brows follow loudness and pitch less closely       both,
               (``COUPLING``); every channel's own statistics are unchanged jointly
head_motion    the head moves less: smaller translation, zoom and roll of   video
               the whole face (``HEAD_MOTION_FACTOR``), expressions as in
               the other class; face normalisation removes exactly this
============== ============================================================ ==========

Latent processes of one vlog (:class:`Latents`): ``voice (T, Da)``, unit-variance
dynamics per acoustic descriptor; ``expression (T, 3)``, unit-variance mouth
opening, brow raise and smile; ``voiced (T,)``, False in silent pauses. They
are rendered like the bursts twin: descriptor values around a speaker's means,
and a 68-point face in pixel coordinates that moves, rolls, grows and shrinks
with the camera, with runs of no-face (all-zero) frames.

``informative`` says, per vlog, which modality carries the label's cue
(``audio``, ``video``, ``both``): benchmarks score a gate's routing against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dynmultidep.data.synthetic.signals import (
    AUDIO_TABLES,
    FACE,
    MOUTH,
    MOUTH_OPENING,
    N_LANDMARKS,
    VlogStreams,
    draw_face_found,
    draw_person,
)

# Acoustic descriptors (D-Vlog's eGeMAPS order).
LOUDNESS, ALPHA_RATIO, SPECTRAL_FLUX, F0, HNR = 0, 1, 5, 10, 13
PROSODY = (LOUDNESS, ALPHA_RATIO, SPECTRAL_FLUX, F0, HNR)  # the descriptors affect moves
VOICED_ONLY = slice(10, 25)  # the *_sma3nz descriptors: 0 in unvoiced (silent) steps
# Facial expressions, columns of ``Latents.expression``.
MOUTH_OPEN, BROW_RAISE, SMILE = 0, 1, 2
EXPRESSION_AMPLITUDE = np.array([0.10, 0.05, 0.05])  # std, in units of half the face width

PHI = 0.8  # AR(1) coefficient of every latent process (one step = one second)
EXPRESSIVITY_SPREAD = 0.3  # person-to-person spread of each process's amplitude (log scale)
FLAT_AFFECT_FACTOR = 0.6  # depressed: amplitude of the affected processes
SLOWED_PHI = 0.92  # depressed: AR(1) coefficient of the affected processes
PHI_SPREAD = 0.04  # person-to-person spread of the AR(1) coefficients
SILENCE_SHARE = 0.3  # share of silent steps, both classes
PAUSE_STEPS = {0: 2.0, 1: 6.0}  # mean pause length by label
COUPLING = {0: 0.85, 1: 0.25}  # correlation of mouth with loudness, brows with pitch
CORRUPTION = {"audio": 1.5, "video": 0.1}  # noise on a corrupted modality: descriptor
# scales (audio), half face widths (video)
HEAD_MOTION_FACTOR = 0.6  # depressed: amplitude of the head's movements
HEAD_MOTION_SPREAD = 0.3  # person-to-person spread of that amplitude (log scale)
ROLL_STD = 0.05  # head roll, radians
JITTER_PIXELS = 0.8


@dataclass
class Latents:
    voice: np.ndarray  # (T, Da) unit-variance descriptor dynamics
    expression: np.ndarray  # (T, 3) unit-variance mouth opening, brow raise, smile
    voiced: np.ndarray  # (T,) bool, False in silent pauses
    informative: str = "both"  # modality that carries the cue: audio | video | both
    corrupted: str | None = None  # modality drowned in noise, if any
    head_motion: float = 1.0  # amplitude of the head's translation, zoom and roll


def ar1(rng: np.random.Generator, steps: int, dim: int, phi) -> np.ndarray:
    """``(steps, dim)`` stationary unit-variance AR(1) noise; ``phi`` scalar or ``(dim,)``."""
    phi = np.broadcast_to(np.asarray(phi, dtype=float), (dim,))
    innovation = np.sqrt(1.0 - phi**2)
    white = rng.standard_normal((steps, dim))
    out = np.empty((steps, dim))
    out[0] = white[0]
    for t in range(1, steps):
        out[t] = phi * out[t - 1] + innovation * white[t]
    return out


def base_latents(rng: np.random.Generator, steps: int, audio_dim: int) -> Latents:
    return Latents(
        voice=ar1(rng, steps, audio_dim, PHI),
        expression=ar1(rng, steps, 3, PHI),
        voiced=np.ones(steps, dtype=bool),
    )


# ------------------------------------------------------------------ the cues
def flat_affect(rng: np.random.Generator, label: int, latents: Latents,
                modalities=("audio", "video")) -> None:  # fmt: skip
    """Depressed: the prosodic descriptors and the expressions vary less in time."""
    if not label:
        return
    if "audio" in modalities:
        latents.voice[:, PROSODY] *= FLAT_AFFECT_FACTOR
    if "video" in modalities:
        latents.expression *= FLAT_AFFECT_FACTOR


def slowed(rng: np.random.Generator, label: int, latents: Latents) -> None:
    """Depressed: the same processes change more slowly, at the same variance."""
    steps = len(latents.voiced)
    phi = (SLOWED_PHI if label else PHI) + PHI_SPREAD * rng.uniform(-1, 1, 2)
    latents.voice[:, PROSODY] = ar1(rng, steps, len(PROSODY), min(phi[0], 0.99))
    latents.expression[:] = ar1(rng, steps, 3, min(phi[1], 0.99))


def pause_mask(rng: np.random.Generator, steps: int, mean_pause: float, share: float):
    """``(steps,)`` bool, False in pauses: alternating runs of speech and silence
    with geometric lengths, pauses of mean ``mean_pause``, silence ``share`` of the time."""
    mean_speech = mean_pause * (1.0 - share) / share
    voiced = np.ones(steps, dtype=bool)
    t = int(rng.integers(0, int(mean_speech) + 1))  # start within a speech run
    while t < steps:
        pause = int(rng.geometric(1.0 / mean_pause))
        voiced[t : t + pause] = False
        t += pause + int(rng.geometric(1.0 / mean_speech))
    return voiced


def pauses(rng: np.random.Generator, label: int, latents: Latents) -> None:
    """Depressed: fewer, longer pauses; the same share of silence."""
    latents.voiced = pause_mask(rng, len(latents.voiced), PAUSE_STEPS[label], SILENCE_SHARE)
    latents.informative = "audio"


def one_modality(rng: np.random.Generator, label: int, latents: Latents) -> None:
    """Flat affect in one modality, chosen at random; the other is corrupted by noise."""
    informative = "audio" if rng.random() < 0.5 else "video"
    flat_affect(rng, label, latents, modalities=(informative,))
    latents.informative = informative
    latents.corrupted = "video" if informative == "audio" else "audio"


def cross_modal(rng: np.random.Generator, label: int, latents: Latents) -> None:
    """Depressed: mouth opening follows loudness, brows follow pitch, less closely.

    Each coupled process stays unit-variance AR(1) with the same coefficient, so
    no channel's own distribution or dynamics change: only their coupling does.
    """
    c = COUPLING[label]
    for expression, descriptor in ((MOUTH_OPEN, LOUDNESS), (BROW_RAISE, F0)):
        own = latents.expression[:, expression]
        latents.expression[:, expression] = (
            c * latents.voice[:, descriptor] + np.sqrt(1 - c * c) * own
        )


def head_motion(rng: np.random.Generator, label: int, latents: Latents) -> None:
    """Depressed: the head moves less (reduced head movement, Alghowinem et al. 2013);
    each person's amount of movement also varies."""
    spread = np.exp(HEAD_MOTION_SPREAD * rng.standard_normal())
    latents.head_motion = (HEAD_MOTION_FACTOR if label else 1.0) * spread
    latents.informative = "video"


CUES: dict[str, Callable[[np.random.Generator, int, Latents], None]] = {
    "flat_affect": flat_affect,
    "slowed": slowed,
    "pauses": pauses,
    "one_modality": one_modality,
    "cross_modal": cross_modal,
    "head_motion": head_motion,
}


# -------------------------------------------------------------- rendering
def _expression_patterns() -> np.ndarray:
    """``(3, 68, 2)`` landmark displacement of a unit mouth opening, brow raise, smile."""
    patterns = np.zeros((3, N_LANDMARKS, 2))
    patterns[MOUTH_OPEN, MOUTH, 1] = MOUTH_OPENING
    patterns[BROW_RAISE, 17:27, 1] = -1.0  # y points down: raising is negative
    for corner in (48, 54, 60, 64):
        patterns[SMILE, corner] = [np.sign(FACE[corner, 0]), -0.5]  # out and up
    return patterns


EXPRESSION_PATTERNS = _expression_patterns()


def render_audio(rng: np.random.Generator, latents: Latents, audio_dim: int) -> np.ndarray:
    """``(T, Da)`` descriptor values: a speaker's means plus scaled dynamics; in
    silent steps loudness drops and the voiced-only descriptors are 0."""
    means, scales, _ = AUDIO_TABLES[audio_dim]
    steps = len(latents.voiced)
    speaker = means + 0.5 * scales * rng.standard_normal(audio_dim)
    amplitude = np.exp(EXPRESSIVITY_SPREAD * rng.standard_normal(audio_dim))
    audio = speaker + scales * amplitude * latents.voice
    silent = ~latents.voiced
    if silent.any():
        audio[silent] = speaker + 0.3 * scales * latents.voice[silent]
        audio[silent, LOUDNESS] -= 2.0 * scales[LOUDNESS]
        audio[silent, VOICED_ONLY] = 0.0
    if latents.corrupted == "audio":
        audio += CORRUPTION["audio"] * scales * rng.standard_normal((steps, audio_dim))
    return audio


def render_face(rng: np.random.Generator, latents: Latents) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 68, 2)`` landmarks in pixels and ``(T,)`` face-found flags."""
    steps = len(latents.voiced)
    half_width, centre, shape = draw_person(rng)
    amplitude = EXPRESSION_AMPLITUDE * np.exp(EXPRESSIVITY_SPREAD * rng.standard_normal(3))
    offsets = shape + np.einsum("te,epc->tpc", latents.expression * amplitude, EXPRESSION_PATTERNS)
    if latents.corrupted == "video":
        offsets += CORRUPTION["video"] * rng.standard_normal(offsets.shape)
    motion = latents.head_motion
    roll = motion * ROLL_STD * ar1(rng, steps, 1, 0.9)[:, 0]
    cos, sin = np.cos(roll)[:, None], np.sin(roll)[:, None]
    x, y = offsets[..., 0], offsets[..., 1]
    rolled = np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)
    head = motion * 6.0 * ar1(rng, steps, 2, 0.9)  # head motion, pixels
    zoom = 1.0 + motion * 0.03 * ar1(rng, steps, 1, 0.9)
    landmarks = centre + half_width * zoom[:, :, None] * rolled + head[:, None, :]
    landmarks += JITTER_PIXELS * rng.standard_normal(landmarks.shape)
    face_found = draw_face_found(rng, steps)
    landmarks[~face_found] = 0.0
    return landmarks, face_found


def draw_cue_streams(
    rng: np.random.Generator,
    cue: str,
    label: int,
    audio_steps: int,
    video_steps: int,
    audio_dim: int,
) -> VlogStreams:
    """One vlog of cue family ``cue`` (any of :data:`CUES`)."""
    steps = max(audio_steps, video_steps)
    latents = base_latents(rng, steps, audio_dim)
    CUES[cue](rng, label, latents)
    return render_streams(rng, latents, audio_dim, audio_steps, video_steps)


def render_streams(
    rng: np.random.Generator, latents: Latents, audio_dim: int, audio_steps: int,
    video_steps: int, noise: float = 0.0,
) -> VlogStreams:  # fmt: skip
    """Render ``latents`` into a vlog's streams, cut to each modality's steps; ``noise``
    adds white noise of that many descriptor scales to the audio."""
    audio = render_audio(rng, latents, audio_dim)
    if noise > 0:
        _, scales, _ = AUDIO_TABLES[audio_dim]
        audio += noise * scales * rng.standard_normal(audio.shape)
    landmarks, face_found = render_face(rng, latents)
    return VlogStreams(
        audio=audio[:audio_steps],
        landmarks=landmarks[:video_steps],
        face_found=face_found[:video_steps],
        episodes=0,
        informative=latents.informative,
    )
