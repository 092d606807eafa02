"""Per-step contributions to a vlog's score, and its timeline figure.

Attribution is gradient x input on the features as the model sees them
(standardised with the training fold's statistics, so 0 is the training mean):

    contribution[t] = sum_d  x[t, d] * d logit / d x[t, d]

summed over each modality's features. It is each step's first-order share of
the logit relative to an input at the training mean; for a model linear in its
inputs (e.g. mean pooling followed by a linear read-out) the contributions of
all steps add up exactly to ``logit(x) - logit(0)``. With a hard gate the
gradient flows through the expert the gate chose, which is the one that
scored the vlog.

A regression checkpoint's output is the PHQ-8 score in standard units of its training
fold; its timeline gives the contributions to the score in PHQ-8 points (the gradient
times the fold's score std) and the predicted score in place of the probability.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from dynmultidep.atomic import write_bytes_atomic, write_text_atomic  # noqa: E402


@dataclass(frozen=True)
class Timeline:
    """One vlog's per-step contributions, ``(T,)`` each: to the logit, or with ``score``
    (a predicted PHQ-8 score, regression checkpoints) to the score; ``probability`` is
    then ``None`` and ``logit`` the output in standard units."""

    id: str
    probability: float | None
    logit: float
    audio: np.ndarray
    video: np.ndarray
    face_found: np.ndarray  # bool: the step's frame had a face
    seconds_per_step: float = 1.0
    score: float | None = None

    @property
    def total(self) -> np.ndarray:
        return self.audio + self.video


def step_contributions(
    net: nn.Module, audio: torch.Tensor, video: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradient x input of each item's logit.

    Args:
        net: the model, ``net(audio, video, lengths) -> ModelOutput``; put in eval mode.
        audio: ``(B, T, Da)``; video: ``(B, T, Dv)``; lengths: ``(B,)``.

    Returns:
        logits ``(B,)``, audio and video contributions ``(B, T)`` (0 past each length).
    """
    net.eval()
    audio = audio.detach().clone().requires_grad_(True)
    video = video.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = net(audio, video, lengths).logits.float()
        # items are independent, so the gradient of the sum is each item's own gradient
        grad_audio, grad_video = torch.autograd.grad(logits.sum(), (audio, video))
    steps = torch.arange(audio.shape[1], device=audio.device)
    valid = (steps[None, :] < lengths.to(audio.device)[:, None]).float()
    return (
        logits.detach(),
        (grad_audio * audio).sum(-1).detach() * valid,
        (grad_video * video).sum(-1).detach() * valid,
    )


def write_timeline_csv(path: str | Path, timeline: Timeline) -> None:
    """``step,seconds,audio,video,total,face_found``: one row per step."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "seconds", "audio", "video", "total", "face_found"])
    for t in range(len(timeline.audio)):
        writer.writerow([
            t, f"{t * timeline.seconds_per_step:g}", f"{timeline.audio[t]:.6g}",
            f"{timeline.video[t]:.6g}", f"{timeline.total[t]:.6g}", int(timeline.face_found[t]),
        ])  # fmt: skip
    write_text_atomic(path, buffer.getvalue())


def timeline_figure(timeline: Timeline) -> plt.Figure:
    """Contributions over time (steps drawn as they last), no-face steps shaded,
    face-found steps ticked along the bottom, the score in the title."""
    steps = len(timeline.audio)
    width = timeline.seconds_per_step
    edges = np.arange(steps + 1) * width
    fig, ax = plt.subplots(figsize=(min(16.0, 7.0 + steps / 60), 3.6))
    for t in np.flatnonzero(~timeline.face_found):
        ax.axvspan(edges[t], edges[t + 1], color="0.88", linewidth=0)

    def stairs(values, **style):
        ax.stairs(values, edges, baseline=None, **style)

    stairs(timeline.audio, color="tab:blue", lw=1, label="audio")
    stairs(timeline.video, color="tab:orange", lw=1, label="video")
    stairs(timeline.total, color="black", lw=1.4, label="audio + video")
    ax.axhline(0, color="grey", lw=0.6)
    found = edges[:-1][timeline.face_found] + width / 2
    ax.plot(found, np.zeros_like(found), "|", color="tab:green", ms=7,
            transform=ax.get_xaxis_transform(), clip_on=False, label="face found")  # fmt: skip
    ax.fill_between([], [], color="0.88", label="no face")  # legend entry for the shading
    regression = timeline.score is not None
    target = "the PHQ-8 score" if regression else "the logit"
    ax.set(xlabel="seconds", ylabel=f"contribution to {target}", xlim=(0, max(edges[-1], width)))
    if regression:
        scored = f"predicted PHQ-8 = {timeline.score:.1f}"
    else:
        scored = f"P(depression) = {timeline.probability:.3f}, logit {timeline.logit:+.3f}"
    ax.set_title(
        f"{timeline.id}: {scored}\nper-step gradient x input (0 = the training mean)",
        fontsize=9,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def write_timeline_png(path: str | Path, timeline: Timeline) -> None:
    fig = timeline_figure(timeline)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
