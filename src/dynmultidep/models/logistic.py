"""L2-penalised logistic regression fit to convergence, its penalty chosen by inner
cross-validation on the training fold.

How the field fits its functionals baseline (openSMILE functionals and a linear
model): the statistics are standardised with the training fold's mean and
standard deviation, and a convex loss is minimised to its optimum, not trained
for a fixed number of noisy steps and then picked on a small validation share.
Here the loss is the (optionally class-weighted) mean log loss plus
``penalty * ||w||^2`` (the intercept is not penalised), minimised in float64 by
Newton's method with a line search until the gradient vanishes.

The penalty is chosen among ``penalties`` by stratified k-fold cross-validation
inside the training fold: each inner fold is standardised with its own
training part, every penalty is fit there (warm-started from the next larger
one) and scored by the mean log loss on the held-out part; the penalty with
the least loss summed over the folds wins, ties going to the larger one. The
test and validation folds are never seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_STD = 1e-6  # a constant statistic is centred, not divided by ~0
GRADIENT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LinearFit:
    """A fitted model on standardised inputs: ``logit = ((x - mean) / std) @ weight + bias``.

    ``mean, std, weight: (F,)``, ``bias: ()``; ``penalty`` the chosen strength;
    ``cv_loss`` the inner cross-validated log loss of each candidate penalty
    (empty when the fold was too small to cross-validate); ``inner_folds`` how
    many inner folds chose it (0: none).
    """

    mean: Tensor
    std: Tensor
    weight: Tensor
    bias: Tensor
    penalty: float
    cv_loss: dict[float, float]
    inner_folds: int


def standardizer(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-column mean and standard deviation of ``x: (N, F)`` -> ``2 x (F,)``."""
    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    return mean, torch.where(std < MIN_STD, torch.ones_like(std), std)


def logistic_loss(
    x: Tensor, y: Tensor, weight: Tensor, bias: Tensor, sample_weight: Tensor | None = None
) -> Tensor:
    """Mean log loss of ``x: (N, F) @ weight (F,) + bias`` against labels ``y: (N,)``,
    weighted by ``sample_weight: (N,)`` when given."""
    losses = F.binary_cross_entropy_with_logits(x @ weight + bias, y, reduction="none")
    if sample_weight is None:
        return losses.mean()
    return (losses * sample_weight).sum() / sample_weight.sum()


def fit_logistic(
    x: Tensor,
    y: Tensor,
    penalty: float,
    sample_weight: Tensor | None = None,
    start: tuple[Tensor, Tensor] | None = None,
    max_iter: int = 100,
) -> tuple[Tensor, Tensor]:
    """Minimise ``logistic_loss + penalty * ||w||^2`` over ``(w, b)``: ``x: (N, F)``,
    ``y: (N,)`` in {0, 1} -> ``w: (F,)``, ``b: ()`` (float64). ``start`` warm-starts.

    Newton's method with a backtracking line search: each step solves the
    ``(F + 1)``-square Hessian system by Cholesky, so ill-conditioned statistics
    (percentiles beside means) converge in tens of steps, where first-order
    methods crawl; it stops when the largest gradient entry is under 1e-9.
    """
    x, y = x.double(), y.double()
    n, f = x.shape
    a = torch.cat([x, x.new_ones(n, 1)], dim=1)  # the intercept as a last column
    sw = x.new_ones(n) if sample_weight is None else sample_weight.double()
    sw = sw / sw.sum()
    ridge = x.new_full((f + 1,), 2.0 * penalty)
    ridge[-1] = 0.0  # the intercept is not penalised
    theta = x.new_zeros(f + 1) if start is None else torch.cat([start[0], start[1][None]]).double()

    def objective(t: Tensor) -> Tensor:
        z = a @ t
        loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        return (sw * loss).sum() + penalty * t[:-1].pow(2).sum()

    value = objective(theta)
    for _ in range(max_iter):
        p = torch.sigmoid(a @ theta)
        grad = a.T @ (sw * (p - y)) + ridge * theta
        if grad.abs().max() < GRADIENT_TOLERANCE:
            break
        curvature = (sw * p * (1 - p)).clamp_min(1e-12)
        hessian = (a * curvature[:, None]).T @ a + torch.diag(ridge)
        hessian.diagonal().add_(1e-12)  # the intercept column alone can be singular
        step = torch.cholesky_solve(grad[:, None], torch.linalg.cholesky(hessian))[:, 0]
        size = 1.0
        while size > 1e-10:  # backtracking: Armijo on the convex objective
            candidate = theta - size * step
            new = objective(candidate)
            if new <= value - 1e-4 * size * (grad @ step):
                break
            size *= 0.5
        if size <= 1e-10:
            break  # no descent left at float64 precision
        theta, value = candidate, new
    return theta[:-1].clone(), theta[-1].clone()


def stratified_folds(y: Tensor, k: int, seed: int = 0) -> list[Tensor]:
    """Indices of ``k`` folds of ``y: (N,)``, each class dealt round-robin in a seeded
    random order, so every fold holds its share of both classes."""
    generator = torch.Generator().manual_seed(seed)
    folds: list[list[Tensor]] = [[] for _ in range(k)]
    offset = 0
    for label in (0, 1):
        members = torch.nonzero(y == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        for i in range(k):
            folds[(i + offset) % k].append(members[i::k])
        offset += len(members) % k  # the next class starts where this one left off
    return [torch.cat(parts).sort().values for parts in folds]


def _fit_path(x, y, penalties, sample_weight) -> list[tuple[Tensor, Tensor]]:
    """Fits for ``penalties`` (descending), each warm-started from the one before."""
    fits, start = [], None
    for penalty in penalties:
        start = fit_logistic(x, y, penalty, sample_weight, start)
        fits.append(start)
    return fits


def cross_validated_fit(
    x: Tensor,
    y: Tensor,
    penalties: Sequence[float],
    folds: int = 5,
    seed: int = 0,
    sample_weight: Tensor | None = None,
) -> LinearFit:
    """Standardise ``x: (N, F)``, choose the penalty among ``penalties`` by ``folds``-fold
    stratified cross-validation (fewer folds when a class has fewer members; none when a
    class has fewer than 2, the median penalty then), refit on all of ``x``."""
    if not penalties:
        raise ValueError("penalties must name at least one L2 strength")
    x, y = x.double(), y.double()
    candidates = sorted((float(p) for p in penalties), reverse=True)
    k = min(folds, int((y == 0).sum()), int((y == 1).sum()))
    losses: dict[float, float] = {}
    if k >= 2 and len(candidates) > 1:
        totals = torch.zeros(len(candidates), dtype=torch.float64)
        for held in stratified_folds(y, k, seed):
            keep = torch.ones(len(y), dtype=torch.bool)
            keep[held] = False
            mean, std = standardizer(x[keep])
            train_sw = None if sample_weight is None else sample_weight[keep]
            held_sw = None if sample_weight is None else sample_weight[held]
            fits = _fit_path((x[keep] - mean) / std, y[keep], candidates, train_sw)
            z = (x[held] - mean) / std
            for i, (w, b) in enumerate(fits):
                totals[i] += logistic_loss(z, y[held], w, b, held_sw) * len(held)
        mean_loss = (totals / len(y)).tolist()
        best = min(range(len(candidates)), key=lambda i: (mean_loss[i], i))  # ties: larger
        chosen = candidates[best]
        losses = dict(zip(candidates, mean_loss, strict=True))
    else:
        chosen = candidates[(len(candidates) - 1) // 2]
        k = 0
    mean, std = standardizer(x)
    weight, bias = fit_logistic((x - mean) / std, y, chosen, sample_weight)
    return LinearFit(mean, std, weight, bias, chosen, losses, k)
