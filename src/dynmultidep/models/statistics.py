"""The statistics expert: per-channel functionals of the raw inputs, projected linearly.

DynMM's idea of a cheap expert for the easy samples. Many vlogs show what
separates them in how much and how fast a channel varies (flat affect, slowed
dynamics, reduced head movement): the functionals baseline reads exactly that,
and on small corpora it beats sequence experts that must learn it from steps.
As an expert of :class:`~dynmultidep.models.dynmultidep.DynMultiDep` it gives
the gate a path that needs no encoder, learnt in one of two ways (``fit``):

* ``gradient``: a representation where the other experts' pooled encodings live,
  which the gate mixes with them and the shared classifier reads::

      s      = [functionals(audio), functionals(video)]   (B, F) F = (3 + P)(Da + Dv)
      r_stat = Linear(Dropout(s))                          (B, pooled_dim)

  The functionals are of inputs the data module has already standardised with
  training-fold statistics, so they are of order one.
* ``closed_form``: the functionals baseline itself
  (:class:`~dynmultidep.models.functionals.Functionals`), a logistic regression
  fit to convergence on the training fold before the first epoch, its penalty
  chosen by inner cross-validation, and frozen after: the expert gives a logit
  ``(B,)``, which the model mixes with the classifier's logit of the others. A
  linear model fit this way is what small corpora reward; gradient steps on the
  same statistics overfit or stop short.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dynmultidep.models.functionals import Functionals, functionals
from dynmultidep.ops.dropout import Dropout

STATS_FITS = ("gradient", "closed_form")


class StatisticsExpert(nn.Module):
    """``(audio (B, T, Da), video (B, T, Dv), lengths (B,))`` -> ``(B, out_dim)``
    (``fit="gradient"``) or the logit ``(B,)`` (``fit="closed_form"``).

    Args:
        audio_dim, video_dim: input widths (Da, Dv).
        out_dim: the width of the other experts' pooled representations.
        percentiles: which percentiles of each channel (0-100).
        dropout: on the functionals, before the projection (gradient fit).
        fit: ``gradient`` or ``closed_form`` (see the module docstring).
        penalties, inner_folds: the closed-form fit's candidate L2 penalties and the
            folds of the inner cross-validation that chooses one.
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        out_dim: int,
        percentiles: Sequence[float] = (10, 50, 90),
        dropout: float = 0.1,
        fit: str = "gradient",
        penalties: Sequence[float] = (1e-3,),
        inner_folds: int = 5,
    ):
        super().__init__()
        if fit not in STATS_FITS:
            raise ValueError(f"the statistics expert's fit must be one of {STATS_FITS}, "
                             f"got {fit!r}")  # fmt: skip
        self.percentiles = tuple(float(p) for p in percentiles)
        self.width = (3 + len(self.percentiles)) * (audio_dim + video_dim)
        self.closed_form = fit == "closed_form"
        if self.closed_form:
            self.logistic = Functionals(
                audio_dim, video_dim, self.percentiles, penalties, inner_folds
            ).requires_grad_(False)  # fit once in closed form, never by the optimiser
        else:
            self.drop = Dropout(dropout)
            self.proj = nn.Linear(self.width, out_dim)

    def statistics(self, audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
        """``(B, F)`` functionals of both modalities, in float32."""
        return torch.cat(
            [functionals(x.float(), lengths, self.percentiles) for x in (audio, video)], dim=-1
        )

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
        if self.closed_form:
            return self.logistic.logit(audio, video, lengths)
        return self.proj(self.drop(self.statistics(audio, video, lengths)))

    def compute_cost(self) -> int:
        """Work per step, in the units of the encoders' cost (parameters applied at every
        step): one update of each functional's running statistic."""
        return self.width
