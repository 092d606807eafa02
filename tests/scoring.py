"""A classical probe for the synthetic-corpus tests: does a feature set separate the classes?"""

from __future__ import annotations

import torch


def fit_and_score(train_x, train_y, test_x, test_y) -> float:
    """Test accuracy of an L2-regularised logistic regression (LBFGS) on standardised
    features: ``train_x (N, F)``, ``train_y (N,)`` in {0, 1}, the same for the test rows."""
    x, xt = torch.tensor(train_x, dtype=torch.float64), torch.tensor(test_x, dtype=torch.float64)
    mean, std = x.mean(0), x.std(0) + 1e-9
    x, xt = (x - mean) / std, (xt - mean) / std
    y = torch.tensor(train_y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=300)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y)
        loss = loss + 1e-2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float((((xt @ w + b) > 0).numpy() == test_y).mean())


def probe_folds(records, vlogs, features) -> tuple[float, float]:
    """``fit_and_score`` of ``features(vlog)`` trained on the train and valid folds and
    scored on the test fold, and the test fold's majority class."""
    import numpy as np

    folds = np.array([r.fold for r in records])
    labels = np.array([v.label for v in vlogs])
    x = np.stack([features(v) for v in vlogs])
    train, test = folds != "test", folds == "test"
    majority = max(labels[test].mean(), 1 - labels[test].mean())
    return fit_and_score(x[train], labels[train], x[test], labels[test]), majority
