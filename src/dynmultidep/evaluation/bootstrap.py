"""The percentile bootstrap, vectorised over resamples: the one implementation behind
the interval of a run's report (:func:`~dynmultidep.evaluation.metrics.bootstrap_interval`)
and the paired interval between two models
(:func:`~dynmultidep.evaluation.significance.paired_bootstrap`).

Resamples are rows of a ``(R, N)`` index drawn with replacement from one seeded
generator; accuracy and binary F1 of every resample are computed at once from
their counts (:mod:`dynmultidep.evaluation.counts`), AUROC resample by resample
(torchmetrics; NaN where a resample holds one class only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc

from dynmultidep.evaluation.counts import count_metrics

RESAMPLED = ("acc", "f1", "auroc")


def draw_resamples(n: int, resamples: int, seed: int) -> Tensor:
    """``(resamples, n)`` indices drawn with replacement from ``range(n)``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(n, (resamples, n), generator=generator)


def resampled_metrics(
    labels: Tensor, decisions: Tensor, probs: Tensor | None = None,
    names: Sequence[str] = RESAMPLED,
) -> dict[str, Tensor]:  # fmt: skip
    """Row-wise ``(R,)`` metrics of ``(R, N)`` labels, 0/1 decisions and probabilities
    (``probs`` is needed for ``auroc`` only)."""
    unknown = set(names) - set(RESAMPLED)
    if unknown:
        raise ValueError(f"cannot resample {sorted(unknown)}; use {', '.join(RESAMPLED)}")
    counted = count_metrics(decisions.bool(), labels.bool())
    out = {name: counted[name] for name in ("acc", "f1") if name in names}
    if "auroc" in names:
        auroc = [float(binary_auroc(p, y)) if 0 < int(y.sum()) < len(y) else math.nan
                 for p, y in zip(probs, labels, strict=True)]  # fmt: skip
        out["auroc"] = torch.tensor(auroc, dtype=torch.double)
    return out


def percentile_interval(values: Tensor, level: float = 0.95) -> list[float]:
    """``[low, high]``: the central ``level`` of ``values (R,)``, NaNs left out
    (``[nan, nan]`` when nothing is left)."""
    values = values[~values.isnan()].double()
    if not len(values):
        return [math.nan, math.nan]
    tail = (1 - level) / 2
    return values.quantile(torch.tensor([tail, 1 - tail], dtype=torch.double)).tolist()
