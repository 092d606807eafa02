"""The functionals baseline: its statistics, its model, and training it through train.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from conftest import QUIET, compose_config
from dynmultidep.models.functionals import Functionals, functionals, masked_percentiles
from dynmultidep.models.logistic import cross_validated_fit, fit_logistic, stratified_folds
from dynmultidep.models.masking import STD_EPS


def padded(sequences, width, garbage=1e3):
    """``(B, L, D)`` with garbage after each sequence, and ``lengths``."""
    steps = max(len(s) for s in sequences)
    x = torch.full((len(sequences), steps, width), garbage)
    for i, s in enumerate(sequences):
        x[i, : len(s)] = torch.as_tensor(s, dtype=torch.float32)
    return x, torch.tensor([len(s) for s in sequences])


def test_functionals_are_the_statistics_of_the_valid_steps():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)).astype(np.float32) for n in (9, 4, 1)]
    x, lengths = padded(seqs, 3)
    out = functionals(x, lengths, (10, 50, 90)).numpy()
    for row, s in zip(out, seqs, strict=True):
        change = np.abs(np.diff(s, axis=0)).mean(0) if len(s) > 1 else np.zeros(3)
        std = np.sqrt(s.var(0) + STD_EPS)  # the project's one std (models.masking)
        expected = np.concatenate([s.mean(0), std, np.percentile(s, 10, axis=0),
                                   np.percentile(s, 50, axis=0), np.percentile(s, 90, axis=0),
                                   change])  # fmt: skip
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-5)


def test_percentiles_ignore_padding():
    x, lengths = padded([[[1.0], [5.0], [3.0]], [[2.0]]], 1, garbage=-50.0)
    out = masked_percentiles(x, lengths, (0, 50, 100))
    assert out[0, :, 0].tolist() == [1.0, 3.0, 5.0]
    assert out[1, :, 0].tolist() == [2.0, 2.0, 2.0]


def newton_logistic(x, y, penalty, weights=None):
    """Reference: Newton's method in float64 NumPy on ``mean_w logloss + penalty ||w||^2``."""
    n, f = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    w = np.ones(n) if weights is None else weights
    w = w / w.sum()
    theta = np.zeros(f + 1)
    ridge = np.full(f + 1, 2 * penalty)
    ridge[-1] = 0.0  # the intercept is not penalised
    for _ in range(100):
        p = 1 / (1 + np.exp(-a @ theta))
        grad = a.T @ (w * (p - y)) + ridge * theta
        hess = (a * (w * p * (1 - p))[:, None]).T @ a + np.diag(ridge)
        theta -= np.linalg.solve(hess, grad)
    return theta[:-1], theta[-1]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("penalty", [1e-3, 0.1, 3.0])
def test_logistic_fit_reaches_the_optimum_newton_finds(penalty, weighted):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 6))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(size=80) > 0).astype(float)
    weights = np.where(y == 1, 2.5, 1.0) if weighted else None
    w, b = fit_logistic(torch.tensor(x), torch.tensor(y), penalty,
                        None if weights is None else torch.tensor(weights))  # fmt: skip
    w_ref, b_ref = newton_logistic(x, y, penalty, weights)
    np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(b), b_ref, rtol=1e-6, atol=1e-7)


def test_stratified_folds_partition_both_classes_evenly():
    y = torch.tensor([1] * 23 + [0] * 12)
    folds = stratified_folds(y, 5, seed=3)
    joined = torch.cat(folds).sort().values
    assert joined.tolist() == list(range(35))  # a partition
    assert all(len(f) in (7,) for f in folds)
    assert {int(y[f].sum()) for f in folds} <= {4, 5}  # 23 positives over 5 folds
    assert [f.tolist() for f in stratified_folds(y, 5, seed=3)] == [f.tolist() for f in folds]
    assert [f.tolist() for f in stratified_folds(y, 5, seed=4)] != [f.tolist() for f in folds]


def test_cross_validation_picks_the_penalty_with_the_least_held_out_loss():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(120, 1))
    x = np.hstack([signal, rng.normal(size=(120, 40))]) * rng.uniform(1, 50, size=41)
    y = (signal[:, 0] + 0.8 * rng.normal(size=120) > 0).astype(float)
    penalties = (1e-4, 1e-2, 1.0, 100.0)
    fit = cross_validated_fit(torch.tensor(x), torch.tensor(y), penalties, folds=4, seed=0)
    assert fit.inner_folds == 4 and set(fit.cv_loss) == set(penalties)
    assert fit.cv_loss[fit.penalty] == min(fit.cv_loss.values())
    # 40 noise columns: a weak penalty overfits, a huge one predicts the base rate
    assert fit.cv_loss[1e-4] > fit.cv_loss[fit.penalty] < fit.cv_loss[100.0]
    # refit on all of x, standardised with all of x's statistics
    np.testing.assert_allclose(fit.mean.numpy(), x.mean(0))
    np.testing.assert_allclose(fit.std.numpy(), x.std(0))
    w_ref, b_ref = newton_logistic((x - x.mean(0)) / x.std(0), y, fit.penalty)
    np.testing.assert_allclose(fit.weight.numpy(), w_ref, rtol=1e-5, atol=1e-7)
    # a class with a single member cannot be cross-validated: the middle candidate
    tiny = cross_validated_fit(torch.tensor(x[:10]), torch.tensor([1.0] + [0.0] * 9), penalties)
    assert tiny.inner_folds == 0 and tiny.cv_loss == {} and tiny.penalty == 1.0


def test_functionals_model_is_fit_on_a_fold_and_standardised_by_it():
    torch.manual_seed(0)
    model = Functionals(4, 6, percentiles=(25, 75), penalties=(1e-2, 1.0), inner_folds=3)
    assert model.linear.in_features == 5 * (4 + 6) and not model.fitted
    audio, video = torch.randn(30, 7, 4) * 5 + 2, torch.randn(30, 7, 6)
    lengths = torch.randint(1, 8, (30,))
    features = model.features(audio, video, lengths)
    labels = (features[:, 0] > 2).float()  # the first audio channel's mean over valid steps
    chosen = model.fit_fold(features, labels)
    assert bool(model.fitted) and chosen["penalty"] in (1e-2, 1.0) and chosen["inner_folds"] == 3
    z = (features - model.mean) / model.std
    torch.testing.assert_close(z.mean(0), torch.zeros(z.shape[1]), atol=1e-5, rtol=0)
    out = model(audio, video, lengths)
    assert out.logits.shape == (30,) and out.gate is None and float(out.aux_loss) == 0.0
    torch.testing.assert_close(out.logits, model.linear(z).squeeze(-1))
    assert float(((out.logits > 0).float() == labels).float().mean()) > 0.8
    audio_only = Functionals(4, 6, percentiles=(), modalities=("audio",))
    assert audio_only.linear.in_features == 3 * 4
    with pytest.raises(ValueError, match="percentiles"):
        Functionals(4, 6, percentiles=(150,))
    with pytest.raises(ValueError, match="penalties"):
        Functionals(4, 6, penalties=())


@pytest.mark.parametrize("pos_weight", [False, True])
def test_model_functionals_is_fit_through_train_py(tmp_path, pos_weight):
    from dynmultidep.tasks.checkpoint import read_checkpoint
    from dynmultidep.tasks.train import train

    cfg = compose_config("train", [
        "model=functionals", "dataset.synthetic.preset=tiny", f"dataset.root={tmp_path}/corpus",
        "dataset.batch_size=8", "trainer.max_epochs=5", f"module.pos_weight={pos_weight}",
        "model.penalties=[0.01,1.0]", "model.inner_folds=3", *QUIET,
        f"paths.output_dir={tmp_path}/run",
    ])  # fmt: skip
    train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["model"] == "dynmultidep.models.functionals.Functionals"
    assert report["best_epoch"] == 0  # fit before the first epoch, which ends the run
    fit = report["closed_form_fit"]
    assert fit["penalty"] in (0.01, 1.0) and fit["inner_folds"] == 3
    assert set(fit["cv_loss"]) == {"0.01", "1"}
    # the kept model is the logistic regression of the training fold's functionals
    datamodule = instantiate(cfg.dataset, _convert_="all")
    datamodule.setup("fit")
    batches = list(datamodule.fold_dataloader("train"))
    model = instantiate(cfg.model)
    features = torch.cat([model.features(b["audio"], b["video"], b["lengths"]) for b in batches])
    labels = torch.cat([b["label"] for b in batches]).float()
    weights = None
    if pos_weight:
        weights = torch.where(labels == 1, (labels == 0).sum() / labels.sum(), torch.ones(()))
    expected = cross_validated_fit(features, labels, (0.01, 1.0), 3, cfg.seed, weights)
    state = read_checkpoint(report["checkpoint"])["state_dict"]
    assert bool(state["net.fitted"])
    torch.testing.assert_close(state["net.linear.weight"][0], expected.weight.float())
    assert (tmp_path / "run" / "predictions.csv").is_file()
