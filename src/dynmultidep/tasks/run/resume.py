"""Resuming an interrupted run in its own directory, and refusing to mix configs.

    python src/train.py resume=logs/train/runs/2026-11-26_10-00-00
    python src/train.py ckpt_path=last hydra.run.dir=logs/train/runs/2026-11-26_10-00-00

``resume=DIR`` re-applies the overrides ``DIR`` was started with (read from
``DIR/.hydra/overrides.yaml``; overrides given now replace those of the same
key) and runs in ``DIR`` again. A training run whose directory already holds
``checkpoints/last.ckpt`` continues from it (``ckpt_path=null``, the default,
or ``ckpt_path=last``); one whose directory holds ``metrics.json`` has finished
and is skipped, which is how a re-launched multirun skips its finished jobs.
Before continuing, the run's resolved config is compared with the one saved in
the checkpoint: any difference outside :data:`IGNORED` is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import OmegaConf

from dynmultidep.errors import CheckpointError, FileError

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
# Keys that may differ between a run and its resumption: where things are, and how
# the run was asked to resume.
IGNORED = ("resume", "ckpt_path", "paths")


def override_key(override: str) -> str:
    """The key an override sets: ``+model.x=1`` -> ``model.x``, ``~logger`` -> ``logger``."""
    return override.split("=", 1)[0].lstrip("+~")


def resume_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` of ``src/train.py`` with ``resume=DIR`` expanded into the overrides ``DIR``
    was started with and ``hydra.run.dir=DIR``; ``argv`` unchanged without ``resume=``."""
    args = list(argv[1:])
    given = [a for a in args if a.startswith("resume=")]
    if not given or given[-1] in ("resume=null", "resume="):
        return list(argv)
    if "-m" in args or "--multirun" in args:
        raise FileError("resume", "resumes one run; to resume a multirun, run the same command "
                        "again with hydra.sweep.dir=<its sweep directory>")  # fmt: skip
    run_dir = Path(given[-1].split("=", 1)[1])
    saved_path = run_dir / ".hydra" / "overrides.yaml"
    if not saved_path.is_file():
        raise FileError(run_dir, "not a run directory to resume (no .hydra/overrides.yaml)")
    saved = OmegaConf.to_container(OmegaConf.load(saved_path))
    if not isinstance(saved, list):
        raise FileError(saved_path, "is not a list of overrides")
    now = {override_key(a) for a in args if not a.startswith("-")}
    kept = [str(o) for o in saved if override_key(str(o)) not in now | {"resume"}]
    return [argv[0], *kept, *args, f"hydra.run.dir={run_dir}"]


def checkpoint_to_resume(ckpt_path: str | None, run_dir: Path) -> Path | None:
    """The checkpoint a training run in ``run_dir`` continues from, or ``None``.

    ``ckpt_path``: ``None`` (``run_dir``'s last checkpoint when there is one), ``"last"``
    (it must exist) or a checkpoint file.
    """
    last = run_dir / LAST_CHECKPOINT
    if ckpt_path is None:
        return last if last.is_file() else None
    if ckpt_path == "last":
        if not last.is_file():
            raise CheckpointError(last, "no last checkpoint to resume from (ckpt_path=last)")
        return last
    path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file not found (ckpt_path resumes training)")
    return path


def flatten(tree: Mapping, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}, "c": [1]}`` -> ``{"a.b": 1, "c": [1]}``."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_differences(
    saved: Mapping, current: Mapping, ignored: Sequence[str] = IGNORED
) -> list[str]:
    """``key: saved -> current`` for every leaf that differs (``<absent>`` where a side
    lacks it), except under the top-level keys ``ignored``."""
    old = {k: v for k, v in flatten(saved).items() if k.split(".")[0] not in ignored}
    new = {k: v for k, v in flatten(current).items() if k.split(".")[0] not in ignored}
    absent = "<absent>"
    return [
        f"{key}: {old.get(key, absent)} -> {new.get(key, absent)}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key, absent) != new.get(key, absent)
    ]


def check_same_config(checkpoint: Mapping, path: Path, current: Mapping) -> None:
    """Refuse to continue the run of ``checkpoint`` (read from ``path``) under another config."""
    saved = checkpoint.get("run_config")
    if saved is None:
        raise CheckpointError(path, "holds no run config, so resuming it cannot be checked")
    differences = config_differences(saved, current)
    if differences:
        shown = "; ".join(differences[:8]) + ("; ..." if len(differences) > 8 else "")
        raise CheckpointError(
            path,
            f"was written under another config ({shown}); resume with the run's own config "
            "(resume=<run dir> re-applies its overrides) or start a new run",
        )
