"""Pooling step encodings over valid steps: mean, statistics, attentive statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynmultidep.models.baselines import Unimodal
from dynmultidep.models.dynmultidep import DynMultiDep
from dynmultidep.models.encoder import EncoderConfig
from dynmultidep.models.pooling import POOLINGS, AttentiveStatisticsPooling, make_pooling

SMALL = dict(d_model=8, d_ffn=16, d_state=4, expand=1, dropout=0.0, input_deltas=False)


def batch(lengths=(6, 3, 1), width=5, seed=0, garbage=100.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), width, generator=g)
    for i, n in enumerate(lengths):
        x[i, n:] = garbage
    return x, torch.tensor(lengths)


def test_stats_pooling_is_the_mean_and_std_of_valid_steps():
    x, lengths = batch()
    out = make_pooling("stats", 5)(x, lengths)
    assert out.shape == (3, 10)
    for i, n in enumerate(lengths.tolist()):
        valid = x[i, :n].numpy()
        np.testing.assert_allclose(out[i, :5].numpy(), valid.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[i, 5:].numpy(), np.sqrt(valid.var(0) + 1e-5), rtol=1e-5)


@pytest.mark.parametrize("kind", POOLINGS)
def test_pooling_ignores_padding_and_has_finite_gradients(kind):
    torch.manual_seed(0)
    pool = make_pooling(kind, 5)
    x, lengths = batch(garbage=100.0)
    y, _ = batch(garbage=-7.0)
    torch.testing.assert_close(pool(x, lengths), pool(y, lengths))
    constant = torch.ones(2, 4, 5, requires_grad=True)  # std 0: still a finite gradient
    pool(constant, torch.tensor([4, 2])).sum().backward()
    assert torch.isfinite(constant.grad).all()
    assert pool.out_dim == (5 if kind == "mean" else 10)


def test_attentive_weights_are_a_softmax_over_valid_steps():
    torch.manual_seed(0)
    pool = AttentiveStatisticsPooling(5)
    x, lengths = batch()
    scores = pool.score(x).squeeze(-1)
    for i, n in enumerate(lengths.tolist()):
        w = torch.softmax(scores[i, :n], 0)
        mean = (w[:, None] * x[i, :n]).sum(0)
        torch.testing.assert_close(pool(x, lengths)[i, :5], mean, rtol=1e-5, atol=1e-6)


def test_models_take_the_pooled_width():
    audio, lengths = batch(width=25)
    video, _ = batch(width=136)
    for pooling in POOLINGS:
        model = DynMultiDep(25, 136, pooling=pooling, experts=("audio", "video", "fused"), **SMALL)
        assert model(audio, video, lengths).logits.shape == (3,)
        assert Unimodal(25, 136, pooling=pooling, **SMALL)(audio, video, lengths).logits.shape == (
            3,
        )
    with pytest.raises(ValueError, match="unknown pooling"):
        EncoderConfig(pooling="max")


def test_input_norm_off_keeps_each_steps_scale():
    from dynmultidep.models.encoder import MTExpert

    torch.manual_seed(0)
    x = torch.randn(1, 4, 5)
    normed = MTExpert(5, EncoderConfig(**SMALL, input_norm=True)).input(x)
    torch.testing.assert_close(
        normed.std(-1, unbiased=False), torch.ones(1, 4), rtol=1e-3, atol=1e-3
    )
    linear = MTExpert(5, EncoderConfig(**SMALL, input_norm=False)).input
    bias = linear[0].bias
    torch.testing.assert_close(linear(2 * x) - bias, 2 * (linear(x) - bias))
