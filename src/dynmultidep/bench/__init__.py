"""Benchmarks behind ``make bench`` (``scripts/bench.py``): each module measures one thing
and returns plain rows; the script prints them and writes them as JSON."""

from pathlib import Path


def compose_train(conf_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()):
    """``conf/train.yaml`` composed with ``overrides``, as ``src/train.py`` composes it."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(Path(conf_dir).resolve()), version_base="1.3"):
        return compose("train", list(overrides))
