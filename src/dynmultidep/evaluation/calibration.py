"""Calibration of the probability of depression: reliability bins and their diagram.

With ``n`` equal-width bins of ``p`` (bin ``b`` holds ``b/n <= p < (b+1)/n``; ``p = 1``
falls in the last), the expected calibration error is

    ECE = sum_b |B_b| / N * | mean(y in B_b) - mean(p in B_b) |,

the gap between the predicted probability and the observed share of depressed
vlogs, averaged over vlogs. It equals torchmetrics' ``BinaryCalibrationError``
(``norm="l1"``), which the reports use (``ece`` in
:mod:`dynmultidep.evaluation.metrics`); a perfectly calibrated model has 0.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import Tensor

from dynmultidep.evaluation.metrics import ECE_BINS


def reliability_bins(
    probs: Tensor, labels: Tensor, n_bins: int = ECE_BINS
) -> tuple[Tensor, Tensor, Tensor]:
    """``(mean_prob (n_bins,), share_depressed (n_bins,), count (n_bins,))``; empty bins
    have NaN means and count 0."""
    probs = probs.double()
    index = (probs * n_bins).floor().long().clamp(0, n_bins - 1)
    count = torch.zeros(n_bins, dtype=torch.double).index_add_(0, index, torch.ones_like(probs))
    prob_sum = torch.zeros(n_bins, dtype=torch.double).index_add_(0, index, probs)
    label_sum = torch.zeros(n_bins, dtype=torch.double).index_add_(0, index, labels.double())
    return prob_sum / count, label_sum / count, count


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = ECE_BINS) -> float:
    mean_prob, share, count = reliability_bins(probs, labels, n_bins)
    filled = count > 0
    gaps = (share[filled] - mean_prob[filled]).abs() * count[filled]
    return float(gaps.sum() / count.sum())


def reliability_figure(probs: Tensor, labels: Tensor, n_bins: int = ECE_BINS) -> Figure:
    """Share of depressed vlogs against the mean predicted probability per bin (bar
    widths: the bins; the diagonal is perfect calibration), with the vlogs per bin."""
    import matplotlib.pyplot as plt

    mean_prob, share, count = reliability_bins(probs, labels, n_bins)
    edges = torch.linspace(0, 1, n_bins + 1)
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(3.8, 4.4), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})  # fmt: skip
    filled = count > 0
    left = edges[:-1][filled].numpy()
    ax.bar(left, share[filled].numpy(), width=1 / n_bins, align="edge", alpha=0.6,
           edgecolor="black", label="share depressed")  # fmt: skip
    ax.plot(mean_prob[filled].numpy(), share[filled].numpy(), "o", color="C1",
            label="at the bin's mean probability")  # fmt: skip
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ece = expected_calibration_error(probs, labels, n_bins)
    ax.set(ylabel="share depressed", ylim=(0, 1), title=f"reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=7)
    hist.bar(edges[:-1].numpy(), count.numpy(), width=1 / n_bins, align="edge", color="grey")
    hist.set(xlabel="predicted probability of depression", ylabel="vlogs", xlim=(0, 1))
    fig.tight_layout()
    return fig
