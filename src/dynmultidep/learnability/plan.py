"""What the learnability benchmark runs.

A plan crosses cue families, corpus sizes, models and seeds. Corpora follow
D-Vlog's fold sizes, label share and length distribution, lengths scaled by
``length_scale`` so that the whole plan fits its budget on a CPU. Seed ``s`` draws
the corpus with generator seed ``s`` and trains with seed ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The best-documented behavioural markers first, then the planted bursts, the two
# multimodal cases, and head motion (which face normalisation removes from the shape).
FAMILIES = (
    "flat_affect", "slowed", "pauses", "bursts", "one_modality", "cross_modal", "head_motion",
)  # fmt: skip
SIZES = {"dvlog": 961, "small": 240}  # vlogs: D-Vlog's size, and a small corpus
MODELS = (
    "functionals",
    "temporal_mean",
    "audio_only",
    "video_only",
    "concat_fusion",
    "late_fusion",
    "dynmultidep",
)
# Families whose cue shows in the face alone (video-only target); cross_modal's cue
# is the coupling of face and voice, which neither modality shows alone.
FACE_FAMILIES = ("flat_affect", "slowed", "bursts", "one_modality", "head_motion")


@dataclass(frozen=True)
class Plan:
    families: tuple[str, ...] = FAMILIES
    # size name -> models trained at that size
    models: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"dvlog": MODELS})
    seeds: tuple[int, ...] = (0, 1, 2)
    length_scale: float = 0.125
    epochs: int | None = None  # None: the training config's default
    overrides: tuple[str, ...] = ()  # extra src/train.py overrides for every job

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(self.models)


PLANS = {
    # About an hour on 2 CPU cores (3,830 s in one run). At the small size the unimodal
    # and late-fusion models are cut: the small-size target concerns DynMultiDep and the
    # functionals.
    "full": Plan(
        models={
            "dvlog": MODELS,
            "small": ("functionals", "temporal_mean", "concat_fusion", "dynmultidep"),
        },
    ),
    # A few minutes: every family at the small size, the functionals and DynMultiDep,
    # one seed, few epochs. It checks that everything runs, not the targets.
    "quick": Plan(
        models={"small": ("functionals", "dynmultidep")},
        seeds=(0,),
        epochs=6,
    ),
}


# The randomised suite (dynmultidep.data.synthetic.random_cues): the models it compares.
SUITE_MODELS = (
    "functionals", "audio_only", "video_only", "concat_fusion", "late_fusion", "dynmultidep",
)  # fmt: skip
# Suite seeds: model choices are made on draws of the development seed, the reported
# table uses the report seed's draws.
SUITE_SEEDS = {"development": 100, "report": 0}
