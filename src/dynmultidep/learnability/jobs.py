"""One job of the learnability benchmark: one model trained on one corpus with one seed.

A job composes ``conf/train.yaml`` as ``src/train.py`` does, with the synthetic
corpus of its family, size and seed and the model's overrides, trains and tests
it in its own run directory, and returns plain scores: test and validation
metrics of the best checkpoint (selected on validation), the majority class of
the test fold and, for gated models, how often the gate relied on the modality
that carries each vlog's cue.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from dynmultidep.bench import QUIET, compose_train
from dynmultidep.bench.runs import scored_run, train_logged, validation_scores
from dynmultidep.data.synthetic import (
    SuiteCorpus,
    SyntheticSpec,
    generate_corpus,
    generate_suite_corpus,
    read_informative,
)

SCORES = ("acc", "macro_f1", "auroc", "f1", "avg4")
SUITE = "suite"  # the size label of the randomised suite's jobs


@dataclass(frozen=True)
class ModelSpec:
    """A row of the benchmark: a label and the ``src/train.py`` overrides that make it.

    ``ModelSpec.parse("functionals")`` is ``model=functionals``;
    ``ModelSpec.parse("wide=model=dynmultidep model.d_model=128")`` a variant.
    """

    label: str
    overrides: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        label, sep, rest = text.partition("=")
        if not sep:
            return cls(label, (f"model={label}",))
        return cls(label, tuple(rest.split()))


@dataclass(frozen=True)
class LearnabilityJob:
    """One model on one corpus with one seed: a fixed cue family at a size, or with
    ``suite`` set, one draw of the randomised suite (``family`` is then its name and
    ``size`` is ``suite``)."""

    family: str
    size: str
    n: int
    model: ModelSpec
    seed: int
    length_scale: float
    epochs: int | None = None
    extra: tuple[str, ...] = ()
    suite: SuiteCorpus | None = None

    @classmethod
    def of_draw(cls, corpus: SuiteCorpus, model: ModelSpec, seed: int, epochs=None, extra=()):
        return cls(corpus.name, SUITE, corpus.n, model, seed, corpus.length_scale, epochs,
                   tuple(extra), corpus)  # fmt: skip

    @property
    def key(self) -> str:
        return f"{self.family}-{self.size}-{self.model.label}-seed{self.seed}"

    def spec(self) -> SyntheticSpec:
        return SyntheticSpec(
            layout="dvlog", preset="full", n=self.n, length_scale=self.length_scale,
            seed=self.seed, cue=self.family,
        )  # fmt: skip

    def corpus_root(self, work_dir: Path) -> Path:
        if self.suite is not None:
            return work_dir / "corpora" / self.suite.name
        return work_dir / "corpora" / f"{self.family}-n{self.n}-x{self.length_scale:g}-{self.seed}"

    def generate(self, root: Path) -> None:
        """Write the job's corpus to ``root``."""
        if self.suite is not None:
            generate_suite_corpus(self.suite, root, force=True)
        else:
            generate_corpus(self.spec(), root, force=True)

    def dataset_overrides(self, work_dir: Path) -> list[str]:
        """``src/train.py`` overrides that read the job's corpus."""
        root = self.corpus_root(work_dir)
        if self.suite is not None:  # read as a corpus in D-Vlog's layout, never regenerated
            return ["dataset=synthetic", f"dataset.root={root}", "dataset.synthetic=null"]
        spec = self.spec()
        return [
            "dataset=synthetic",
            f"dataset.root={root}",
            "dataset.synthetic.preset=full",
            f"dataset.synthetic.n={spec.n}",
            f"dataset.synthetic.length_scale={spec.length_scale}",
            f"dataset.synthetic.seed={spec.seed}",
            f"dataset.synthetic.cue={spec.cue}",
        ]

    def overrides(self, work_dir: Path) -> list[str]:
        out = [
            *self.dataset_overrides(work_dir),
            f"seed={self.seed}",
            *self.model.overrides,
            *self.extra,
            *QUIET,
            f"paths.output_dir={work_dir / 'runs' / self.key}",
        ]
        if self.epochs is not None:
            out.append(f"trainer.max_epochs={self.epochs}")
        return out

    def describe(self) -> dict:
        """The job as plain JSON values (what a stored result is matched against)."""
        described = {**asdict(self), "model": self.model.label,
                     "overrides": list(self.model.overrides),
                     "suite": None if self.suite is None else self.suite.describe()}  # fmt: skip
        return json.loads(json.dumps(described))  # tuples as lists, as stored


def ensure_corpus(job: LearnabilityJob, work_dir: Path) -> Path:
    """Generate the job's corpus unless it is there (call from one process only)."""
    root = job.corpus_root(work_dir)
    if not (root / "labels.csv").is_file():
        job.generate(root)
    return root


def routing(run_dir: Path, informative: dict[str, str]) -> dict:
    """How the gate routed the test vlogs: share per expert and, over vlogs whose cue
    is in one modality, the share routed to that modality (``None`` without a gate)."""
    path = run_dir / "predictions.csv"
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "relied_on" not in rows[0]:
        return {"routed": None, "routed_informative": None}
    counts: dict[str, int] = {}
    hits = total = 0
    for row in rows:
        counts[row["relied_on"]] = counts.get(row["relied_on"], 0) + 1
        target = informative.get(row["id"])
        if target in ("audio", "video"):
            total += 1
            hits += row["relied_on"] == target
    return {
        "routed": {k: v / len(rows) for k, v in sorted(counts.items())},
        "routed_informative": hits / total if total else None,
    }


def run_job(job: LearnabilityJob, work_dir: str | Path, conf_dir: str | Path) -> dict:
    """Train and test ``job``; return its scores (``error`` set if it failed).

    The corpus must exist (:func:`ensure_corpus`). Output of the training run goes
    to its ``job.log``.
    """
    work_dir = Path(work_dir)
    run_dir = work_dir / "runs" / job.key
    result = {**job.describe(), "key": job.key, "config": None}

    def work(log_text: io.StringIO) -> None:
        cfg = compose_train(conf_dir, job.overrides(work_dir))
        result["config"] = config_digest(cfg)
        train_logged(cfg, log_text)
        report = json.loads((run_dir / "metrics.json").read_text())
        positive = report["all_positive_baseline"]["acc"]
        result.update(
            test={k: report["metrics"][k] for k in SCORES},
            val=validation_scores(run_dir, report.get("best_epoch")),
            majority=max(positive, 1 - positive),
            best_epoch=report.get("best_epoch"),
            **routing(run_dir, read_informative(job.corpus_root(work_dir))),
        )

    return scored_run(run_dir, result, work)


def config_digest(cfg) -> str:
    """A digest of a job's whole composed training config: it changes whenever a
    default of ``conf/`` does, so that stored results of other settings are not reused."""
    from omegaconf import OmegaConf

    return hashlib.sha256(OmegaConf.to_yaml(cfg).encode()).hexdigest()[:16]
