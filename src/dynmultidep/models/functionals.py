"""The functionals baseline: per-channel statistics over time, then a linear classifier.

The floor the field's classic papers start from (openSMILE functionals and a
linear model). For each channel of each modality, over the valid steps of a
vlog: mean, standard deviation, the ``percentiles``, and the mean absolute
change between consecutive steps. The functionals are standardised with
the training fold's statistics, then one linear layer, a logistic regression
fit to convergence with an inner-cross-validated L2 penalty, gives the logit.
It sees how much and how fast each channel varies, but nothing of
the order of events or of how channels move together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dynmultidep.models.experts import MODALITIES
from dynmultidep.models.logistic import cross_validated_fit
from dynmultidep.models.masking import masked_mean, masked_mean_std, valid_mask
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
    (a vlog of one step has change 0 and std ``sqrt(STD_EPS)``, see
    :mod:`dynmultidep.models.masking`)."""
    parts = list(masked_mean_std(x, lengths))
    if percentiles:
        parts.append(masked_percentiles(x, lengths, percentiles).flatten(1))
    change = (x[:, 1:] - x[:, :-1]).abs()
    parts.append(masked_mean(change, (lengths - 1).clamp_min(0)))
    return torch.cat(parts, dim=-1)


class Functionals(nn.Module):
    """``(audio, video, lengths) -> logit`` from the functionals of both modalities.

    Fit in closed form, not by gradient steps: :meth:`fit_fold` takes the functionals
    and labels of the whole training fold, standardises them with that fold's
    statistics and fits an L2-penalised logistic regression to convergence, its
    penalty chosen among ``penalties`` by ``inner_folds``-fold cross-validation
    inside the fold (:mod:`dynmultidep.models.logistic`). The training task calls it
    once before the first epoch (``fits_in_closed_form``) and takes no optimiser step.

    Args:
        audio_dim, video_dim: feature widths (Da, Dv).
        percentiles: which percentiles of each channel (0-100).
        penalties: candidate weights of ``||w||^2`` (against the mean log loss); one
            value fixes it.
        inner_folds: folds of the inner cross-validation that chooses the penalty.
        modalities: which modalities the classifier reads.
    """

    fits_in_closed_form = True

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        percentiles: Sequence[float] = (10, 50, 90),
        penalties: Sequence[float] = (1e-3,),
        inner_folds: int = 5,
        modalities: Sequence[str] = MODALITIES,
    ):
        super().__init__()
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown or not modalities:
            raise ValueError(f"modalities must be drawn from {MODALITIES}, got {list(modalities)}")
        self.percentiles = tuple(float(p) for p in percentiles)
        if any(not 0 <= p <= 100 for p in self.percentiles):
            raise ValueError(f"percentiles must lie in [0, 100], got {list(self.percentiles)}")
        self.penalties = tuple(float(p) for p in penalties)
        if not self.penalties or any(p < 0 for p in self.penalties):
            raise ValueError(f"penalties must be non-negative numbers, got {list(penalties)}")
        if inner_folds < 2:
            raise ValueError(f"inner_folds must be at least 2, got {inner_folds}")
        self.inner_folds = inner_folds
        self.modalities = tuple(modalities)
        dims = {"audio": audio_dim, "video": video_dim}
        width = sum((3 + len(self.percentiles)) * dims[m] for m in self.modalities)
        # training-fold statistics of the functionals (identity until fitted)
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.linear = nn.Linear(width, 1)

    def features(self, audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
        """``(B, F)`` functionals of the chosen modalities, before standardisation."""
        inputs = {"audio": audio, "video": video}
        return torch.cat(
            [functionals(inputs[m].float(), lengths, self.percentiles) for m in self.modalities],
            dim=-1,
        )

    @torch.no_grad()
    def fit_fold(
        self, features: Tensor, labels: Tensor, sample_weight: Tensor | None = None, seed: int = 0
    ) -> dict:
        """Fit to the training fold's ``features: (N, F)`` (from :meth:`features`) and
        ``labels: (N,)``; returns what was chosen (penalty, inner-CV losses) for the logs."""
        fit = cross_validated_fit(
            features, labels, self.penalties, self.inner_folds, seed, sample_weight
        )
        self.mean.copy_(fit.mean)
        self.std.copy_(fit.std)
        self.linear.weight.copy_(fit.weight[None])
        self.linear.bias.copy_(fit.bias[None])
        self.fitted.fill_(True)
        return {
            "penalty": fit.penalty,
            "inner_folds": fit.inner_folds,
            "cv_loss": {f"{p:g}": loss for p, loss in fit.cv_loss.items()},
        }

    @property
    def closed_form_part(self) -> Functionals:
        """What the training task fits before the first epoch: the whole model."""
        return self

    def logit(self, audio: Tensor, video: Tensor, lengths: Tensor) -> Tensor:
        """``(B,)`` the logistic regression's logit."""
        z = (self.features(audio, video, lengths) - self.mean) / self.std
        return self.linear(z).squeeze(-1)

    def forward(self, audio: Tensor, video: Tensor, lengths: Tensor) -> ModelOutput:
        logits = self.logit(audio, video, lengths)
        return ModelOutput(logits, None, logits.new_zeros(()))
