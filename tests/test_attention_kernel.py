"""The fused banded-attention kernels against their plain reference
(:func:`dynmultidep.ops.attention.banded_attention`)."""

from __future__ import annotations

import pytest
import torch

from dynmultidep.models.attention import LocalAttention
from dynmultidep.ops.attention import (
    band_keep_mask,
    banded_attention,
    fused_banded_attention,
    kernel_usable,
)
from dynmultidep.ops.vectors import WIDTH

KEYS = (123456789, 987654321)


def inputs(sizes, width, seed=0):
    """Packed projections with garbage (large values) in the padded steps, the lengths,
    and which steps are valid ``(B, L, 1)``."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(sizes)
    valid = (torch.arange(max(sizes))[None, :] < lengths[:, None])[..., None]
    packed = torch.randn(len(sizes), max(sizes), 3 * width, generator=g)
    garbage = 1e3 * torch.randn(packed.shape, generator=g)
    return torch.where(valid, packed, garbage), lengths, valid


def reference(packed, lengths, heads, window, causal, dropout):
    batch, length, _ = packed.shape
    q, k, v = packed.view(batch, length, 3, heads, -1).permute(2, 0, 3, 1, 4)
    keep = band_keep_mask((batch, heads, length), window, dropout, KEYS) if dropout else None
    out = banded_attention(q, k, v, lengths, window, causal, dropout, keep=keep)
    return out.transpose(1, 2).flatten(2)


# head widths below, at and above the vector width (the scalar and register paths)
@pytest.mark.parametrize(("width", "heads"), [(16, 2), (2 * WIDTH, 1), (4 * WIDTH, 2), (48, 3)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize(("sizes", "window"), [((1,), 4), ((7, 1, 3), 1), ((300, 41, 2), 16),
                                               ((97, 60), 5)])  # fmt: skip
def test_fused_equals_reference_values_and_gradients(width, heads, causal, dropout, sizes, window):
    packed, lengths, valid = inputs(sizes, width)
    target = torch.randn(len(sizes), max(sizes), width) * valid  # a loss on valid queries
    results = []
    for fn in (lambda p: fused_banded_attention(p, lengths, heads, window, causal, dropout, KEYS),
               lambda p: reference(p, lengths, heads, window, causal, dropout)):  # fmt: skip
        x = packed.clone().requires_grad_()
        out = fn(x)
        (out * target).sum().backward()
        results.append((out * valid, x.grad))
    (got, got_grad), (want, want_grad) = results
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-4)
    assert (got_grad * ~valid).abs().max() == 0  # nothing flows into padding


def test_padded_queries_give_zero_and_the_dropout_mask_follows_its_keys():
    packed, lengths, valid = inputs((40, 9), 32)
    out = fused_banded_attention(packed, lengths, 2, 6, False, 0.5, KEYS)
    assert out.shape == (2, 40, 32)
    assert (out * ~valid).abs().max() == 0
    again = fused_banded_attention(packed, lengths, 2, 6, False, 0.5, KEYS)
    other = fused_banded_attention(packed, lengths, 2, 6, False, 0.5, (1, 2))
    assert torch.equal(out, again)
    assert not torch.allclose(out, other)


def test_bf16_projections_are_computed_in_fp32():
    packed, lengths, _ = inputs((50, 20), 32)
    full = fused_banded_attention(packed, lengths, 2, 8)
    half = fused_banded_attention(packed.bfloat16(), lengths, 2, 8)
    assert half.dtype == torch.bfloat16
    want = fused_banded_attention(packed.bfloat16().float(), lengths, 2, 8)
    torch.testing.assert_close(half.float(), want, rtol=1e-2, atol=1e-2)
    assert (full - want).abs().max() < 0.2  # only the inputs' rounding differs


def test_the_layer_takes_the_kernel_where_it_can(monkeypatch):
    layer = LocalAttention(32, num_heads=2, window=4)
    x = torch.randn(2, 30, 32)
    assert kernel_usable(layer.qkv(x), 2, 4)
    assert not kernel_usable(layer.qkv(x).double(), 2, 4)
    calls = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    fused = layer(x)
    layer.kernel = False
    plain = layer(x)
    assert calls == [1]  # the reference ran once, with kernel = False
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)


def test_dropout_rate_must_lie_below_one():
    packed, lengths, _ = inputs((5,), 8)
    with pytest.raises(ValueError, match="attention dropout"):
        fused_banded_attention(packed, lengths, 1, 2, dropout=1.0)
