"""The functionals baseline: per-channel statistics over time, then a linear classifier.

The floor the field's classic papers start from (openSMILE functionals and a
linear model). For each channel of each modality, over the valid steps of a
vlog: mean, standard deviation, the ``percentiles``, and the mean absolute
change between consecutive steps. The functionals are standardised
(``BatchNorm1d`` without affine parameters: batch statistics in training, the
running ones in evaluation), then one linear layer gives the logit; ``l2``
adds ``l2 * ||w||^2`` to the training loss (weight decay of a logistic
regression). It sees how much and how fast each channel varies, but nothing of
the order of events or of how channels move together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dynmultidep.models.experts import MODALITIES
from dynmultidep.models.masking import masked_mean, masked_mean_var, valid_mask
from dynmultidep.models.output import ModelOutput

STATISTICS = ("mean", "std", "percentiles", "mean_abs_change")


def masked_percentiles(x: Tensor, lengths: Tensor, percentiles: Sequence[float]) -> Tensor:
    """Percentiles over valid steps, linearly interpolated between the closest ranks.

    ``x: (B, L, D)``, ``lengths: (B,)`` -> ``(B, P, D)``.
    """
    valid = valid_mask(x, lengths)
    ordered = x.masked_fill(~valid[..., None], float("inf")).sort(dim=1).values
    q = torch.tensor([p / 100.0 for p in percentiles], device=x.device, dtype=x.dtype)
    last = (lengths.to(x.device) - 1).clamp_min(0).to(x.dtype)  # (B,)
    rank = q[None, :] * last[:, None]  # (B, P) fractional rank of each percentile
    low = rank.floor().long()
    high = rank.ceil().long()
    weight = (rank - low.to(x.dtype))[..., None]
    take = lambda index: ordered.gather(1, index[..., None].expand(-1, -1, x.shape[2]))  # noqa: E731
    return (1 - weight) * take(low) + weight * take(high)


def functionals(x: Tensor, lengths: Tensor, percentiles: Sequence[float] = (10, 50, 90)) -> Tensor:
    """``x: (B, L, D)``, ``lengths: (B,)`` -> ``(B, (3 + P) * D)``: mean, std,
    percentiles and mean absolute change of every channel over valid steps
    (a vlog of one step has std and change 0)."""
    mean, var = masked_mean_var(x, lengths)
    parts = [mean, var.clamp_min(0).sqrt()]
    if percentiles:
        parts.append(masked_percentiles(x, lengths, percentiles).flatten(1))
    change = (x[:, 1:] - x[:, :-1]).abs()
    parts.append(masked_mean(change, (lengths - 1).clamp_min(0)))
    return torch.cat(parts, dim=-1)


class Functionals(nn.Module):
    """``(audio, video, lengths) -> logit`` from the functionals of both modalities.

    Args:
        audio_dim, video_dim: feature widths (Da, Dv).
        percentiles: which percentiles of each channel (0-100).
        l2: weight of ``||w||^2`` in the training loss.
        modalities: which modalities the classifier reads.
    """

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        percentiles: Sequence[float] = (10, 50, 90),
        l2: float = 1e-3,
        modalities: Sequence[str] = MODALITIES,
    ):
        super().__init__()
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown or not modalities:
            raise ValueError(f"modalities must be drawn from {MODALITIES}, got {list(modalities)}")
        self.percentiles = tuple(float(p) for p in percentiles)
        if any(not 0 <= p <= 100 for p in self.percentiles):
            raise ValueError(f"percentiles must lie in [0, 100], got {list(self.percentiles)}")
        self.modalities = tuple(modalities)
        self.l2 = l2
        dims = {"audio": audio_dim, "video": video_dim}
        width = sum((3 + len(self.percentiles)) * dims[m] for m in self.modalities)
        self.norm = nn.BatchNorm1d(width, affine=False)
        self.linear = nn.Linear(width, 1)

    def features(self, audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
        """``(B, F)`` functionals of the chosen modalities, before standardisation."""
        inputs = {"audio": audio, "video": video}
        return torch.cat(
            [functionals(inputs[m].float(), lengths, self.percentiles) for m in self.modalities],
            dim=-1,
        )

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        features = self.features(audio, video, lengths)
        if self.training and len(features) == 1:  # no batch statistics from one vlog
            self.norm.eval()
            z = self.norm(features)
            self.norm.train()
        else:
            z = self.norm(features)
        logits = self.linear(z).squeeze(-1)
        penalty = (
            self.l2 * self.linear.weight.pow(2).sum() if self.training else logits.new_zeros(())
        )
        return ModelOutput(logits, None, penalty)
