"""The hashed dropout: its fused kernel against the plain PyTorch mask, bit for bit,
and the behaviour of a dropout (rate, scaling, gradient, reproducibility)."""

from __future__ import annotations

import math

import pytest
import torch

from dynmultidep.ops.dropout import Dropout, hashed_dropout, keep_mask_reference
from dynmultidep.ops.dropout_kernel import BLOCK

KEYS = (123456789, 3987654321)


@pytest.mark.parametrize("numel", [1, 17, BLOCK - 1, 3 * BLOCK + 17])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_kernel_gives_the_reference_mask_and_scaling(numel, p):
    x = torch.rand(numel) + 0.5  # no zeros: the mask is where the output is non-zero
    y = hashed_dropout(x, p, keys=KEYS)
    keep = keep_mask_reference(numel, p, KEYS)
    assert torch.equal(y != 0, keep)
    scale = torch.tensor(1.0 / (1.0 - p), dtype=torch.float32)
    assert torch.equal(y[keep], x[keep] * scale)


def test_gradient_applies_the_same_mask_to_the_upstream_gradient():
    x = (torch.rand(4, 50, 30) + 0.5).requires_grad_()
    upstream = torch.randn(4, 50, 30)
    y = hashed_dropout(x, 0.3, keys=KEYS)
    (grad,) = torch.autograd.grad((y * upstream).sum(), [x])
    keep = keep_mask_reference(x.numel(), 0.3, KEYS).view_as(x)
    scale = torch.tensor(1.0 / 0.7, dtype=torch.float32)
    assert torch.equal(grad, torch.where(keep, upstream * scale, torch.zeros(())))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_rate_is_one_minus_p_and_fresh_keys_give_an_independent_mask(p):
    n = 1_000_000
    torch.manual_seed(0)
    x = torch.ones(n)
    first, second = hashed_dropout(x, p) != 0, hashed_dropout(x, p) != 0
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(first.float().mean().item() - (1 - p)) < 5 * sigma
    # two independent masks agree on a share p^2 + (1 - p)^2 of the elements
    agree = (first == second).float().mean().item()
    assert abs(agree - (p * p + (1 - p) ** 2)) < 5 * math.sqrt(0.25 / n)
    # neighbouring elements are uncorrelated within a mask
    both = (first[1:] & first[:-1]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 5 * math.sqrt(0.25 / n)


def test_the_seed_makes_it_reproducible():
    x = torch.randn(3, 100)
    torch.manual_seed(7)
    a = hashed_dropout(x, 0.2)
    torch.manual_seed(7)
    assert torch.equal(hashed_dropout(x, 0.2), a)
    assert not torch.equal(hashed_dropout(x, 0.2), a)


def test_module_is_a_drop_in_dropout():
    drop = Dropout(0.25)
    assert drop.state_dict() == {} and repr(drop) == repr(torch.nn.Dropout(0.25))
    x = torch.randn(2, 40, 8)
    drop.eval()
    assert drop(x) is x
    drop.train()
    y = drop(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert torch.equal(hashed_dropout(x, 0.0), x) and not hashed_dropout(x, 1.0).any()
    with pytest.raises(ValueError, match="in place"):
        Dropout(0.1, inplace=True)(x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        hashed_dropout(x, 1.5)


def test_bf16_takes_the_kernel_mask_with_fp32_scaling_rounded_once():
    x = (torch.rand(3, 70, 9) + 0.5).bfloat16().requires_grad_()
    upstream = torch.randn(3, 70, 9).bfloat16()
    y = hashed_dropout(x, 0.3, keys=KEYS)
    keep = keep_mask_reference(x.numel(), 0.3, KEYS).view_as(x)
    scale = torch.tensor(1.0 / 0.7, dtype=torch.float32)
    assert y.dtype == torch.bfloat16
    zero = torch.zeros((), dtype=torch.bfloat16)
    assert torch.equal(y, torch.where(keep, (x.detach().float() * scale).bfloat16(), zero))
    (grad,) = torch.autograd.grad(y, [x], upstream)
    assert grad.dtype == torch.bfloat16
    assert torch.equal(grad, torch.where(keep, (upstream.float() * scale).bfloat16(), zero))


def test_bf16_rounding_matches_pytorch_on_ties_extremes_and_nan():
    bits = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32).to(torch.int16)
    x = bits.view(torch.bfloat16)  # every bf16 value: ties, subnormals, the largest, inf, NaN
    y = hashed_dropout(x, 0.3, keys=KEYS)
    keep = keep_mask_reference(x.numel(), 0.3, KEYS)
    expected = (x.float() * torch.tensor(1.0 / 0.7)).bfloat16()
    nan = expected.isnan()
    assert torch.equal(y.isnan(), nan & keep)
    assert torch.equal(y[keep & ~nan].view(torch.int16), expected[keep & ~nan].view(torch.int16))
    assert not y[~keep].any()


def test_other_dtypes_fall_back_to_pytorch_dropout():
    x = torch.randn(2, 64, dtype=torch.float64) + 3  # no zeros
    y = hashed_dropout(x, 0.5, keys=KEYS)
    assert y.dtype == torch.float64
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] * 2)
    assert not torch.equal(kept, keep_mask_reference(x.numel(), 0.5, KEYS).view_as(x))
