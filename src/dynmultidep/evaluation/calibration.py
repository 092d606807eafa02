"""Calibration of the probability of depression: reliability bins and their diagram.

The expected calibration error is torchmetrics' ``BinaryCalibrationError``
(``norm="l1"``, :data:`~dynmultidep.evaluation.metrics.ECE_BINS` bins), the one
the reports use (``ece`` in :mod:`dynmultidep.evaluation.metrics`):

    ECE = sum_b |B_b| / N * | mean(y in B_b) - mean(p in B_b) |,

the gap between the predicted probability and the observed share of depressed
vlogs, averaged over vlogs; a perfectly calibrated model has 0. Its bins are
those of :func:`reliability_bins`: ``n`` equal-width bins ``b/n <= p < (b+1)/n``
and one more that holds ``p = 1`` exactly (torchmetrics bins with the right edge
open, so a probability of exactly 1 is a bin of its own), which the figure draws
just past 1, in its own colour.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.functional.classification import binary_calibration_error

from dynmultidep.evaluation.metrics import ECE_BINS


def reliability_bins(
    probs: Tensor, labels: Tensor, n_bins: int = ECE_BINS
) -> tuple[Tensor, Tensor, Tensor]:
    """``(mean_prob (n_bins + 1,), share_depressed (n_bins + 1,), count (n_bins + 1,))``,
    binned as torchmetrics' calibration error bins (the last bin: ``p = 1``); empty bins
    have NaN means and count 0."""
    probs = probs.float()  # torchmetrics bins float32 probabilities on float32 edges
    edges = torch.linspace(0, 1, n_bins + 1, dtype=probs.dtype)
    index = torch.bucketize(probs, edges, right=True) - 1  # in 0 .. n_bins
    probs = probs.double()
    count = torch.zeros(n_bins + 1, dtype=torch.double).index_add_(0, index, torch.ones_like(probs))
    prob_sum = torch.zeros(n_bins + 1, dtype=torch.double).index_add_(0, index, probs)
    label_sum = torch.zeros(n_bins + 1, dtype=torch.double).index_add_(0, index, labels.double())
    return prob_sum / count, label_sum / count, count


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = ECE_BINS) -> float:
    """torchmetrics' binary expected calibration error (``norm="l1"``)."""
    return float(binary_calibration_error(probs.float(), labels.long(), n_bins=n_bins))


def reliability_figure(probs: Tensor, labels: Tensor, n_bins: int = ECE_BINS) -> Figure:
    """Share of depressed vlogs against the mean predicted probability per bin (bar
    widths: the bins; the diagonal is perfect calibration), with the vlogs per bin."""
    import matplotlib.pyplot as plt

    mean_prob, share, count = reliability_bins(probs, labels, n_bins)
    # n equal bins, then the bin of p = 1 as a narrow bar of its own colour just past 1
    narrow = 1 / (4 * n_bins)
    left = torch.cat([torch.arange(n_bins) / n_bins, torch.tensor([1.0])]).numpy()
    width = torch.cat([torch.full((n_bins,), 1 / n_bins), torch.tensor([narrow])]).numpy()
    colours = ["C0"] * n_bins + ["C3"]
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(3.8, 4.4), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})  # fmt: skip
    filled = (count > 0).numpy()
    ax.bar(left[filled], share[filled].numpy(), width=width[filled], align="edge", alpha=0.6,
           edgecolor="black", color=[c for c, f in zip(colours, filled, strict=True) if f],
           label="share depressed (red: p = 1 exactly)")  # fmt: skip
    ax.plot(mean_prob[filled].numpy(), share[filled].numpy(), "o", color="C1",
            label="at the bin's mean probability")  # fmt: skip
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ece = expected_calibration_error(probs, labels, n_bins)
    ax.set(ylabel="share depressed", ylim=(0, 1), title=f"reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=7)
    hist.bar(left, count.numpy(), width=width, align="edge", color=["grey"] * n_bins + ["C3"])
    hist.set(xlabel="predicted probability of depression", ylabel="vlogs",
             xlim=(0, 1 + narrow))  # fmt: skip
    fig.tight_layout()
    return fig
