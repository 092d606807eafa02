"""The statistics expert: per-channel functionals of the raw inputs, projected linearly.

DynMM's idea of a cheap expert for the easy samples. Many vlogs show what
separates them in how much and how fast a channel varies (flat affect, slowed
dynamics, reduced head movement): the functionals baseline reads exactly that,
and on small corpora it beats sequence experts that must learn it from steps.
As an expert of :class:`~dynmultidep.models.dynmultidep.DynMultiDep` it gives
the gate a path that needs no encoder:

    s      = [functionals(audio), functionals(video)]   (B, F) F = (3 + P)(Da + Dv)
    r_stat = Linear(Dropout(s))                          (B, pooled_dim)

The functionals (:func:`~dynmultidep.models.functionals.functionals`: mean,
standard deviation, percentiles and mean absolute change over valid steps) are
of inputs the data module has already standardised with training-fold
statistics, so they are of order one and need no normalisation of their own;
the expert is batch-invariant. ``r_stat`` lives where the other experts' pooled
encodings do, so the gate mixes it with them and the shared classifier reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dynmultidep.models.dropout import Dropout
from dynmultidep.models.functionals import functionals


class StatisticsExpert(nn.Module):
    """``(audio (B, T, Da), video (B, T, Dv), lengths (B,)) -> (B, out_dim)``.

    Args:
        audio_dim, video_dim: input widths (Da, Dv).
        out_dim: the width of the other experts' pooled representations.
        percentiles: which percentiles of each channel (0-100).
        dropout: on the functionals, before the projection.
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        out_dim: int,
        percentiles: Sequence[float] = (10, 50, 90),
        dropout: float = 0.1,
    ):
        super().__init__()
        self.percentiles = tuple(float(p) for p in percentiles)
        self.width = (3 + len(self.percentiles)) * (audio_dim + video_dim)
        self.drop = Dropout(dropout)
        self.proj = nn.Linear(self.width, out_dim)

    def statistics(self, audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
        """``(B, F)`` functionals of both modalities, in float32."""
        return torch.cat(
            [functionals(x.float(), lengths, self.percentiles) for x in (audio, video)], dim=-1
        )

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
        return self.proj(self.drop(self.statistics(audio, video, lengths)))

    def compute_cost(self) -> int:
        """Work per step, in the units of the encoders' cost (parameters applied at every
        step): one update of each functional's running statistic."""
        return self.width
