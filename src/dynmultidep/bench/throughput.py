"""Training throughput: one epoch of the D-Vlog recipe on the full-size synthetic D-Vlog
(real length distribution), with length bucketing and with random batches.

Random batches: the same sampler with a single bucket, so batches take vlogs of any
length; to stay within the same ``max_tokens`` memory budget they hold as many vlogs as
the longest vlog allows. Padded-step efficiency is real steps / padded steps of the
epoch's batches.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.utils import instantiate

from dynmultidep.bench import compose_train
from dynmultidep.data.sampler import padding_fraction
from dynmultidep.tasks.callbacks.resources import EpochResources
from dynmultidep.tasks.run.builders import set_tf32

RANDOM_BATCHES = ("dataset.bucket_ratio=1e9",)  # one bucket: no length grouping
# the bucketed full-size epoch's target (BENCHMARKS.md): on the CPU, and on a GPU in bf16
# (the 120-epoch recipe in 20 minutes)
EPOCH_TARGET_S = {"cpu": 150.0, "cuda": 10.0}


def recipe_config(
    conf_dir: Path, preset: str, overrides: tuple[str, ...], experiment: str = "dvlog_dynmultidep"
):  # fmt: skip
    """The training config of ``experiment`` (a recipe) on the synthetic twin ``preset``."""
    return compose_train(conf_dir, [f"experiment={experiment}", "dataset=synthetic",
                                    f"dataset.synthetic.preset={preset}",
                                    "dataset.max_tokens=32768", *overrides])  # fmt: skip


def time_epoch(
    conf_dir: Path, random_batches: bool, fraction: float, device: str, preset: str = "full",
    precision: str | None = None, corpus: str | Path | None = None,
) -> dict:  # fmt: skip
    """Train one epoch (or ``fraction`` of its batches) of the recipe; time it.
    ``precision``: Lightning's (default ``bf16-mixed`` on CUDA, ``32-true`` on CPU);
    ``corpus``: an existing synthetic D-Vlog of ``preset`` (default: generated under
    ``data/``). On CUDA the epoch's peak allocated memory is reported too."""
    precision = precision or ("bf16-mixed" if device == "cuda" else "32-true")
    overrides = RANDOM_BATCHES if random_batches else ()
    if corpus is not None:
        overrides += (f"dataset.root={corpus}",)
    cfg = recipe_config(conf_dir, preset, overrides)
    set_tf32(bool(cfg.get("tf32", False)))  # as train.py computes
    L.seed_everything(0)
    datamodule = instantiate(cfg.dataset, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = instantiate(cfg.module, model=cfg.model, _recursive_=False)
    timer = EpochResources()  # the epoch's time (CUDA synchronised) and peak memory
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=1,
        precision=precision,
        limit_train_batches=fraction, limit_val_batches=0, num_sanity_val_steps=0,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, use_distributed_sampler=False, callbacks=[timer],
    )  # fmt: skip
    loader = datamodule.train_dataloader()
    batches = loader.batch_sampler.batches(0)
    lengths = loader.dataset.lengths
    trainer.fit(module, train_dataloaders=loader)
    used = batches[: max(1, int(len(batches) * fraction))]  # as Lightning limits them
    items = sum(len(b) for b in used)
    return {
        "batches": "random" if random_batches else "bucketed", "preset": preset,
        "device": device, "precision": precision, "peak_memory_mib": timer.peak_mib,
        "epoch_items": len(lengths), "epoch_batches": len(batches),
        "timed_fraction": fraction, "timed_items": items, "seconds": timer.train_seconds,
        "epoch_seconds": timer.train_seconds / fraction,
        "items_per_s": items / timer.train_seconds,
        "padded_step_efficiency": 1.0 - padding_fraction(batches, lengths),
    }  # fmt: skip


def bench_throughput(
    conf_dir: Path, fractions: tuple[float, float], device: str = "cpu", preset: str = "full",
    precisions: tuple[str, ...] = ("32-true",), corpus: str | Path | None = None,
) -> list[dict]:  # fmt: skip
    """The bucketed epoch at each of ``precisions`` (Lightning's names), then random
    batches at the first; ``fractions`` of the bucketed and random epochs timed."""
    rows = [time_epoch(conf_dir, False, fractions[0], device, preset, p, corpus)
            for p in precisions]  # fmt: skip
    rows.append(time_epoch(conf_dir, True, fractions[1], device, preset, precisions[0], corpus))
    return rows
