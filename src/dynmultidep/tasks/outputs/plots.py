"""Figures of a fold's predictions, written as PNG and logged to TensorBoard / W&B:
confusion matrix, ROC curve, reliability diagram, and the gate's weights by true label.
Regression runs draw predicted against true PHQ-8 scores instead of the reliability
diagram; their confusion matrix and ROC curve are those of the scores' decisions
(:mod:`dynmultidep.evaluation.regression`)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torchmetrics.functional.classification import (  # noqa: E402
    binary_auroc,
    binary_confusion_matrix,
    binary_roc,
)

from dynmultidep.atomic import write_bytes_atomic  # noqa: E402
from dynmultidep.evaluation.predictions import Predictions  # noqa: E402
from dynmultidep.evaluation.regression import PHQ8_CUTOFF, PHQ8_RANGE  # noqa: E402

CLASSES = ("normal", "depression")


def confusion_figure(pred: Predictions) -> Figure:
    matrix = binary_confusion_matrix(pred.predicted, pred.truth).numpy()
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues")
    for i in range(2):
        for j in range(2):
            count = int(matrix[i, j])
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if count > matrix.max() / 2 else "black")  # fmt: skip
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=CLASSES, yticklabels=CLASSES,
           xlabel="predicted", ylabel="true", title="confusion matrix")  # fmt: skip
    fig.tight_layout()
    return fig


def roc_figure(pred: Predictions) -> Figure:
    fpr, tpr, _ = binary_roc(pred.ranking, pred.truth)
    auroc = float(binary_auroc(pred.ranking, pred.truth))
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.plot(fpr.numpy(), tpr.numpy(), label=f"model (AUROC {auroc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def gate_figure(pred: Predictions) -> Figure:
    experts = pred.expert_names
    fig, axes = plt.subplots(1, len(experts), figsize=(3.2 * len(experts), 3.0), squeeze=False)
    for e, (ax, name) in enumerate(zip(axes[0], experts, strict=True)):
        for label, cls in enumerate(CLASSES):
            weights = pred.gate[pred.truth == label, e]
            ax.hist(weights.numpy(), bins=20, range=(0, 1), alpha=0.6, label=cls)
        ax.set(title=f"gate weight: {name}", xlabel="weight", ylabel="vlogs")
        ax.legend()
    fig.tight_layout()
    return fig


def scores_figure(pred: Predictions) -> Figure:
    """Predicted against true PHQ-8 scores, the identity and the cut-off drawn."""
    low, high = PHQ8_RANGE
    fig, ax = plt.subplots(figsize=(3.8, 3.6))
    ax.scatter(pred.true_scores.numpy(), pred.scores.numpy(), s=14, alpha=0.7)
    ax.plot([low, high], [low, high], "--", color="grey", lw=0.8, label="predicted = true")
    ax.axvline(PHQ8_CUTOFF, color="tab:red", lw=0.6)
    ax.axhline(PHQ8_CUTOFF, color="tab:red", lw=0.6, label=f"cut-off ({PHQ8_CUTOFF})")
    ax.set(xlabel="true PHQ-8 score", ylabel="predicted PHQ-8 score", xlim=(low - 1, high + 1),
           title="PHQ-8 scores")  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def figures(pred: Predictions) -> dict[str, Figure]:
    """Name -> figure; the gate plot only for models with a gate."""
    from dynmultidep.evaluation.calibration import reliability_figure

    made = {"confusion_matrix": confusion_figure(pred), "roc_curve": roc_figure(pred)}
    if pred.regression:
        made["scores"] = scores_figure(pred)
    else:
        made["reliability"] = reliability_figure(pred.probs, pred.labels)
    if pred.gate is not None:
        made["gate_weights"] = gate_figure(pred)
    return made


def save_png(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG (atomically); the figure stays open."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def save_figures(pred: Predictions, out_dir: str | Path, prefix: str, loggers=()) -> list[Path]:
    """Write ``{prefix}_{name}.png`` files into ``out_dir``; log them to the
    TensorBoard and W&B loggers among ``loggers``."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    paths = []
    for name, fig in figures(pred).items():
        path = save_png(fig, Path(out_dir) / f"{prefix}_{name}.png")
        paths.append(path)
        for logger in loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(f"{prefix}/{name}", fig, close=False)
            elif isinstance(logger, WandbLogger):
                logger.log_image(key=f"{prefix}/{name}", images=[str(path)])
        plt.close(fig)
    return paths
