"""Benchmarks of trained models on the synthetic corpus (the default ``small`` twin of
D-Vlog, compact model sizes), trained here first with ``src/train.py``'s task:

* dynamic inference: the default DynMultiDep (``gate_input: raw``, hard gate) runs
  only the expert each vlog is routed to (both encoders for the fused expert); against
  the same model with ``gate_input: encoded``, which runs every expert. The paper model
  (``model=dynmultidep_paper``: both gate levels hard) runs only the expert and the
  fusion operation each vlog is routed to; against the paper model trained with soft
  gates (every part runs), and against itself with skipping off
  (``models.gate.set_dynamic``: every part runs, the same predictions). Test-fold
  inference time (median of repeated passes) and FLOPs (``torch.utils.flop_counter``:
  matrix products and convolutions; the selective scan kernel is not an ATen operation
  and is not counted in any model), and accuracy;
* missing modality: test accuracy with the video (or the audio) blanked, i.e. set to
  zeros after standardisation (the training mean), for DynMultiDep trained with and
  without ``modality_dropout``, beside the unimodal baselines and the functionals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from dynmultidep.bench import QUIET, compose_train
from dynmultidep.bench.timing import median_time
from dynmultidep.evaluation.metrics import binary_metrics
from dynmultidep.models.gate import set_dynamic
from dynmultidep.tasks.checkpoint import (
    classifier_from_checkpoint,
    datamodule_for,
    read_checkpoint,
)


class DynamicPair(NamedTuple):
    """A dynamic-inference comparison: a model that runs everything against one that
    skips what it did not choose, the latter also measured with skipping off."""

    everything: str
    skipping: str
    same_weights: bool = False  # also the skipping model's weights with every part run


DYNAMIC = (
    DynamicPair("dynmultidep_encoded_gate", "dynmultidep"),
    DynamicPair("dynmultidep_paper_soft_gates", "dynmultidep_paper", same_weights=True),
)
# name -> overrides of src/train.py
VARIANTS = {
    "dynmultidep": (),  # the default: gate on the raw inputs' statistics
    "dynmultidep_encoded_gate": ("model.gate_input=encoded",),
    "dynmultidep_modality_dropout": ("model.modality_dropout=0.3",),
    "dynmultidep_paper": ("model=dynmultidep_paper",),  # both gate levels hard
    "dynmultidep_paper_soft_gates": ("model=dynmultidep_paper", "model.hard_gate=false"),
    "audio_only": ("model=audio_only",),
    "video_only": ("model=video_only",),
    "functionals": ("model=functionals",),
}


def train_variant(conf_dir: Path, name: str, out_dir: Path, epochs: int) -> Path:
    """Train variant ``name`` into ``out_dir``; return its best checkpoint."""
    from dynmultidep.tasks.train import train

    overrides = [*VARIANTS[name], "~logger", *QUIET, f"trainer.max_epochs={epochs}",
                 f"paths.output_dir={out_dir}"]  # fmt: skip
    cfg = compose_train(conf_dir, overrides)
    train(cfg)
    return Path(json.loads((out_dir / "metrics.json").read_text())["checkpoint"])


class TestSet:
    """A trained model and its test fold's batches, standardised as in training."""

    def __init__(self, ckpt: Path):
        checkpoint = read_checkpoint(ckpt)
        self.module = classifier_from_checkpoint(checkpoint, ckpt)
        datamodule = datamodule_for(checkpoint, ckpt)
        datamodule.setup("test")
        self.batches = list(datamodule.test_dataloader())

    def predict(self, blank: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and labels over the test fold, with ``blank`` (audio/video) zeroed."""
        probs, labels = [], []
        with torch.no_grad():
            for batch in self.batches:
                inputs = dict(batch)
                if blank is not None:
                    inputs[blank] = torch.zeros_like(batch[blank])
                probs.append(torch.sigmoid(self.module(inputs).logits.float()))
                labels.append(batch["label"])
        return torch.cat(probs), torch.cat(labels)

    def accuracy(self, blank: str | None = None) -> float:
        probs, labels = self.predict(blank)
        return binary_metrics(probs, labels)["acc"]

    def flops(self) -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            self.predict()
        return counter.get_total_flops()

    def seconds(self, repeats: int) -> float:
        self.predict()  # warm up
        return median_time(self.predict, repeats)

    def routed_share(self) -> dict[str, float]:
        """Share of test vlogs the gate sends to each expert, and with a fusion gate, to
        each fusion operation (``fused:<op>``)."""
        names = list(self.module.expert_names)
        if not names:
            return {}
        fusion = getattr(self.module.net, "fusion", None)
        ops = list(fusion.op_names) if fusion is not None and fusion.gate is not None else []
        counts = torch.zeros(len(names) + len(ops))
        with torch.no_grad():
            for batch in self.batches:
                out = self.module(batch)
                choice = out.gate.argmax(-1)
                counts[: len(names)] += torch.bincount(choice, minlength=len(names)).float()
                if ops:
                    fused = out.fusion_gate[choice == names.index("fused")].argmax(-1)
                    counts[len(names) :] += torch.bincount(fused, minlength=len(ops)).float()
        total = counts[: len(names)].sum()
        labels = names + [f"fused:{op}" for op in ops]
        return {n: float(c / total) for n, c in zip(labels, counts, strict=True)}

    def dynamic_row(self, name: str, repeats: int) -> dict:
        return {"model": name, "accuracy": self.accuracy(), "flops": self.flops(),
                "seconds": self.seconds(repeats), "routed": self.routed_share()}  # fmt: skip


def bench_trained(conf_dir: Path, work_dir: Path, epochs: int, repeats: int) -> dict:
    tests = {
        name: TestSet(train_variant(conf_dir, name, work_dir / name, epochs)) for name in VARIANTS
    }
    dynamic = []
    for everything, skipping, same_weights in DYNAMIC:
        dynamic.append(tests[everything].dynamic_row(everything, repeats))
        if same_weights:
            set_dynamic(tests[skipping].module, False)
            dynamic.append(tests[skipping].dynamic_row(f"{skipping} (skipping off)", repeats))
            set_dynamic(tests[skipping].module, True)
        dynamic.append(tests[skipping].dynamic_row(skipping, repeats))
    missing = [
        {"model": name, "accuracy": test.accuracy(),
         "video_blanked": test.accuracy("video"), "audio_blanked": test.accuracy("audio")}
        for name, test in tests.items() if name not in {pair.everything for pair in DYNAMIC}
    ]  # fmt: skip
    return {"epochs": epochs, "dynamic": dynamic, "missing_modality": missing}
