"""Pooling an expert's step encodings over a vlog's valid steps.

``(B, L, d) , lengths (B,) -> (B, out_dim)``:

* ``mean``: the masked mean (``out_dim = d``). It keeps what a vlog's encodings
  are on average; how much they vary in time is lost unless the encoder has
  turned variability into a level.
* ``stats``: masked mean and standard deviation, concatenated (``2 d``): the
  x-vector statistics pooling of speaker recognition. Variability of any
  encoded feature is then read directly.
* ``attentive_stats``: attention-weighted mean and standard deviation (``2 d``;
  Okabe et al., 2018): a small MLP scores each step, the scores are
  softmax-normalised over valid steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dynmultidep.models.encoder import POOLINGS
from dynmultidep.models.masking import masked_mean, masked_mean_std, valid_mask, weighted_mean_std


class MeanPooling(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.out_dim = d_model

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return masked_mean(x, lengths)


class StatisticsPooling(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.out_dim = 2 * d_model

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return torch.cat(masked_mean_std(x, lengths), dim=-1)


class AttentiveStatisticsPooling(nn.Module):
    def __init__(self, d_model: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(8, d_model // 2)
        self.score = nn.Sequential(nn.Linear(d_model, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.out_dim = 2 * d_model

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        scores = self.score(x).squeeze(-1).float()  # (B, L)
        scores = scores.masked_fill(~valid_mask(x, lengths), float("-inf"))
        weights = torch.softmax(scores, dim=1).nan_to_num(0.0).to(x.dtype)  # empty: all 0
        return torch.cat(weighted_mean_std(x, weights), dim=-1)


def make_pooling(kind: str, d_model: int) -> nn.Module:
    """A pooling module of ``kind`` (one of :data:`POOLINGS`); its ``out_dim`` is its width."""
    if kind == "mean":
        return MeanPooling(d_model)
    if kind == "stats":
        return StatisticsPooling(d_model)
    if kind == "attentive_stats":
        return AttentiveStatisticsPooling(d_model)
    raise ValueError(f"unknown pooling {kind!r}; use one of {', '.join(POOLINGS)}")
