"""Benchmarks behind ``make bench`` (``scripts/bench.py``): each module measures one thing
and returns plain rows; the script prints them and writes them as JSON."""

from pathlib import Path

# src/train.py overrides of a benchmark's training runs: no progress output, on the CPU.
QUIET = (
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
)


def compose_train(conf_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()):
    """``conf/train.yaml`` composed with ``overrides``, as ``src/train.py`` composes it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base="1.3"):
        return compose("train", list(overrides))
