"""Randomised cue corpora: a broad prior over what separates the classes.

Six fixed cue families (:mod:`.cues`) can be tuned to. A suite draw instead
samples a whole corpus from a prior, so that a model is measured on corpora
nobody designed it for:

* **kinds** (one, or two at once): ``flat_affect`` (less variability),
  ``slowed`` (slower change at the same variance), ``pauses`` (longer pauses at
  the same share of silence), ``speech_rate`` (more silence: slower speech),
  ``loudness`` (a quieter voice), ``cross_modal`` (face and voice coupled less
  closely), ``head_motion`` (the head moves less);
* **strength** of the depressed class's change (0: none, 1: as strong as the
  fixed families) and **spread**, the person-to-person variation of the
  property the cue acts on, in both classes (0: none, 0.5: large);
* **carrier** of ``flat_affect`` and ``slowed``: ``audio``, ``video``, ``both``, or
  ``random`` (one modality chosen per vlog, the other optionally drowned in
  noise, as ``one_modality``); the other kinds have their own modality;
* **channels**: which acoustic descriptors (1 to 6 of 25) and which facial
  expressions (1 to 3 of mouth opening, brow raise, smile) the cue acts on;
* **noise process**: the AR(1) coefficient of every latent process and extra
  white noise on the descriptors;
* **size** (160 to 1,800 vlogs, log-uniform), **shares** (D-Vlog's folds,
  labels and genders, or LMVD's balanced 8:1:1 with genders drawn at random)
  and **lengths** (D-Vlog's distribution scaled by 0.08 to 0.16).

Every corpus is written in D-Vlog's layout with ``cues.csv`` (the modality
carrying each vlog's cue) and a manifest of its draw; it is a deterministic
function of the suite seed and the draw's index.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynmultidep.data.synthetic.cues import (
    BROW_RAISE,
    COUPLING,
    F0,
    FLAT_AFFECT_FACTOR,
    HEAD_MOTION_FACTOR,
    LOUDNESS,
    MOUTH_OPEN,
    PAUSE_STEPS,
    PHI,
    SILENCE_SHARE,
    SLOWED_PHI,
    Latents,
    ar1,
    pause_mask,
    render_streams,
)
from dynmultidep.data.synthetic.signals import VlogStreams

KINDS = (
    "flat_affect", "slowed", "pauses", "speech_rate", "loudness", "cross_modal", "head_motion",
)  # fmt: skip
CARRIERS = ("audio", "video", "both", "random")
# The modality of the kinds that have one of their own (the others follow the carrier).
OWN_MODALITY = {
    "pauses": "audio", "speech_rate": "audio", "loudness": "audio",
    "cross_modal": "both", "head_motion": "video",
}  # fmt: skip
VOICING_KINDS = ("pauses", "speech_rate")  # both set the voicing: never drawn together
SHARES = ("dvlog", "lmvd")
LOUDNESS_SHIFT = 0.8  # depressed, at strength 1: loudness latent lowered by this many stds
SPEECH_RATE_SILENCE = 0.6  # depressed, at strength 1: share of silence x (1 + this)
MAX_SILENCE = 0.6  # keeps speech runs at least one step long on average
N_RANGE = (160, 1800)
LENGTH_SCALE_RANGE = (0.08, 0.16)
SPREADS = (0.0, 0.15, 0.3, 0.5)
NOISES = (0.0, 0.5, 1.0)


@dataclass(frozen=True)
class RandomCue:
    """What separates the classes in one suite corpus (see the module docstring)."""

    kinds: tuple[str, ...]
    strength: float
    spread: float
    carrier: str
    corrupt_other: bool
    audio_channels: tuple[int, ...]
    expressions: tuple[int, ...]
    phi: float
    noise: float

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be drawn from {KINDS}, got {list(self.kinds)}")
        if self.carrier not in CARRIERS:
            raise ValueError(f"carrier must be one of {CARRIERS}, got {self.carrier!r}")

    def draw_streams(
        self, rng: np.random.Generator, label: int, audio_steps: int, video_steps: int,
        audio_dim: int,
    ) -> VlogStreams:  # fmt: skip
        """One vlog: latent processes, this cue applied for ``label``, then rendered."""
        steps = max(audio_steps, video_steps)
        latents = Latents(
            voice=ar1(rng, steps, audio_dim, self.phi),
            expression=ar1(rng, steps, 3, self.phi),
            voiced=np.ones(steps, dtype=bool),
        )
        carrier = self.carrier
        if carrier == "random":
            carrier = "audio" if rng.random() < 0.5 else "video"
            if self.corrupt_other:
                latents.corrupted = "video" if carrier == "audio" else "audio"
        carried = set()
        for kind in self.kinds:
            modality = OWN_MODALITY.get(kind, carrier)
            EFFECTS[kind](self, rng, label, latents, modality)
            carried |= {"audio", "video"} if modality == "both" else {modality}
        latents.informative = carried.pop() if len(carried) == 1 else "both"
        return render_streams(rng, latents, audio_dim, audio_steps, video_steps, self.noise)

    def person(self, rng: np.random.Generator) -> float:
        """One person's log-scale deviation of the property the cue acts on."""
        return self.spread * rng.standard_normal()


# ------------------------------------------------------------------ the effects
def _in(modality: str, which: str) -> bool:
    return modality in (which, "both")


def flat_affect(cue, rng, label, latents, modality) -> None:
    """Less variability of the chosen channels (factor 0.6 at strength 1)."""
    factor = np.exp(np.log(FLAT_AFFECT_FACTOR) * cue.strength * label + cue.person(rng))
    if _in(modality, "audio"):
        latents.voice[:, cue.audio_channels] *= factor
    if _in(modality, "video"):
        latents.expression[:, cue.expressions] *= factor


def slowed(cue, rng, label, latents, modality) -> None:
    """Slower change of the chosen channels at the same variance."""
    phi = cue.phi + (SLOWED_PHI - PHI) * cue.strength * label + 0.1 * cue.person(rng)
    phi = float(np.clip(phi, 0.05, 0.99))
    steps = len(latents.voiced)
    if _in(modality, "audio"):
        latents.voice[:, cue.audio_channels] = ar1(rng, steps, len(cue.audio_channels), phi)
    if _in(modality, "video"):
        latents.expression[:, cue.expressions] = ar1(rng, steps, len(cue.expressions), phi)


def pauses(cue, rng, label, latents, modality) -> None:
    """Longer pauses at the same share of silence (3x at strength 1)."""
    ratio = PAUSE_STEPS[1] / PAUSE_STEPS[0]
    mean_pause = PAUSE_STEPS[0] * ratio ** (cue.strength * label) * np.exp(cue.person(rng))
    latents.voiced = pause_mask(rng, len(latents.voiced), max(mean_pause, 1.0), SILENCE_SHARE)


def speech_rate(cue, rng, label, latents, modality) -> None:
    """More silence at the same pause length: slower speech."""
    share = SILENCE_SHARE * (1 + SPEECH_RATE_SILENCE * cue.strength * label)
    share = float(np.clip(share * np.exp(cue.person(rng)), 0.05, MAX_SILENCE))
    latents.voiced = pause_mask(rng, len(latents.voiced), PAUSE_STEPS[0], share)


def loudness(cue, rng, label, latents, modality) -> None:
    """A quieter voice: the loudness process lowered."""
    latents.voice[:, LOUDNESS] += -LOUDNESS_SHIFT * cue.strength * label + cue.person(rng)


def cross_modal(cue, rng, label, latents, modality) -> None:
    """Mouth follows loudness and brows follow pitch less closely."""
    gap = (COUPLING[0] - COUPLING[1]) * cue.strength * label
    c = float(np.clip(COUPLING[0] - gap + 0.3 * cue.person(rng), 0.0, 0.95))
    for expression, descriptor in ((MOUTH_OPEN, LOUDNESS), (BROW_RAISE, F0)):
        own = latents.expression[:, expression]
        latents.expression[:, expression] = (
            c * latents.voice[:, descriptor] + np.sqrt(1 - c * c) * own
        )


def head_motion(cue, rng, label, latents, modality) -> None:
    """The head moves less (x0.6 at strength 1)."""
    log_factor = np.log(HEAD_MOTION_FACTOR) * cue.strength * label
    latents.head_motion = float(np.exp(log_factor + cue.person(rng)))


EFFECTS = {
    "flat_affect": flat_affect, "slowed": slowed, "pauses": pauses,
    "speech_rate": speech_rate, "loudness": loudness, "cross_modal": cross_modal,
    "head_motion": head_motion,
}  # fmt: skip


# ------------------------------------------------------------------ the suite
@dataclass(frozen=True)
class SuiteCorpus:
    """One draw of the suite: its cue, size, shares, lengths and generator seed."""

    suite_seed: int
    index: int
    cue: RandomCue
    n: int
    shares: str
    length_scale: float

    @property
    def seed(self) -> int:
        """The generator seed of this corpus (its folds, labels and streams)."""
        return int(np.random.default_rng([self.suite_seed, self.index, 1]).integers(2**31))

    @property
    def name(self) -> str:
        return f"suite{self.suite_seed}-draw{self.index:02d}"

    def describe(self) -> dict:
        """Plain JSON values of the draw."""
        return {**dataclasses.asdict(self), "seed": self.seed, "name": self.name}

    def summary(self) -> str:
        """One line for tables: each kind in its modality, strength, spread, noise, size."""
        carrier = self.cue.carrier + ("/corrupted" if self.cue.corrupt_other else "")
        kinds = "+".join(f"{k}@{OWN_MODALITY.get(k, carrier)}" for k in self.cue.kinds)
        return (f"{kinds} s={self.cue.strength:.2f} spread={self.cue.spread:g} "
                f"noise={self.cue.noise:g} n={self.n} {self.shares}")  # fmt: skip


def draw_cue(rng: np.random.Generator, audio_dim: int = 25) -> RandomCue:
    """One cue from the prior (see the module docstring)."""
    count = 1 if rng.random() < 0.7 else 2
    kinds: list[str] = []
    while len(kinds) < count:
        kind = str(rng.choice(KINDS))
        if kind in kinds or (kind in VOICING_KINDS and set(kinds) & set(VOICING_KINDS)):
            continue
        kinds.append(kind)
    carrier = str(rng.choice(CARRIERS))
    if all(kind in OWN_MODALITY for kind in kinds):
        carrier = "both"  # no kind follows the carrier: none is drawn per vlog
    channels = rng.choice(audio_dim, size=int(rng.integers(1, 7)), replace=False)
    expressions = rng.choice(3, size=int(rng.integers(1, 4)), replace=False)
    return RandomCue(
        kinds=tuple(kinds),
        strength=round(float(rng.uniform(0.3, 1.0)), 3),
        spread=float(rng.choice(SPREADS)),
        carrier=carrier,
        corrupt_other=carrier == "random" and bool(rng.random() < 0.5),
        audio_channels=tuple(sorted(int(c) for c in channels)),
        expressions=tuple(sorted(int(e) for e in expressions)),
        phi=round(float(rng.uniform(0.5, 0.95)), 3),
        noise=float(rng.choice(NOISES)),
    )


def draw_suite(draws: int, suite_seed: int) -> list[SuiteCorpus]:
    """``draws`` corpora from the prior; draw ``i`` depends on ``(suite_seed, i)`` only."""
    out = []
    for index in range(draws):
        rng = np.random.default_rng([suite_seed, index, 0])
        cue = draw_cue(rng)
        n = int(round(np.exp(rng.uniform(*np.log(N_RANGE)))))
        shares = str(rng.choice(SHARES))
        length_scale = round(float(rng.uniform(*LENGTH_SCALE_RANGE)), 3)
        out.append(SuiteCorpus(suite_seed, index, cue, n, shares, length_scale))
    return out


def suite_corpus_from(manifest: dict) -> SuiteCorpus:
    """The draw a suite corpus's manifest records."""
    fields = {k: manifest[k] for k in ("suite_seed", "index", "n", "shares", "length_scale")}
    cue = {k: tuple(v) if isinstance(v, list) else v for k, v in manifest["cue"].items()}
    return SuiteCorpus(cue=RandomCue(**cue), **fields)


def write_suite_manifest(root: Path, corpus: SuiteCorpus) -> None:
    (root / "suite.json").write_text(json.dumps(corpus.describe(), indent=2) + "\n")
