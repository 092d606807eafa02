"""The fused causal convolution (+ bias + SiLU) against PyTorch's, and Mamba blocks
on the fused path against the plain PyTorch block: values and every gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dynmultidep.models.mamba import Mamba, tie_state_transition
from dynmultidep.ops.causal_conv import causal_conv1d, causal_conv_reference


def relative_error(actual, expected) -> float:
    scale = expected.abs().max().clamp_min(1e-6)
    return float((actual.double() - expected.double()).abs().max() / scale)


@pytest.mark.parametrize(
    ("batch", "length", "channels", "taps"),
    [(1, 1, 1, 4), (2, 3, 5, 4), (2, 64, 70, 4), (3, 65, 129, 4), (1, 2000, 16, 4),
     (2, 50, 33, 2), (2, 50, 33, 3)],
)  # fmt: skip
@pytest.mark.parametrize(("bias", "silu"), [(True, True), (False, True), (True, False)])
def test_fused_conv_matches_pytorch(batch, length, channels, taps, bias, silu):
    torch.manual_seed(0)
    # a strided channels-last view, as the block passes half of in_proj's output
    parent = torch.randn(batch, length, 2 * channels, requires_grad=True)
    x = parent[..., :channels]
    weight = torch.randn(channels, taps, requires_grad=True)
    b = torch.randn(channels, requires_grad=True) if bias else None
    leaves = [parent, weight] + ([b] if bias else [])
    expected = causal_conv_reference(x, weight, b, silu)
    got = causal_conv1d(x, weight, b, silu, backend="fused")
    assert got.shape == expected.shape and relative_error(got, expected) < 1e-6
    upstream = torch.randn_like(expected)
    want = torch.autograd.grad((expected * upstream).sum(), leaves)
    have = torch.autograd.grad((got * upstream).sum(), leaves)
    for name, a, e in zip(("x", "weight", "bias"), have, want, strict=False):
        assert relative_error(a, e) < 1e-5, name


def test_fused_conv_is_causal_and_batch_invariant():
    torch.manual_seed(1)
    x = torch.randn(3, 40, 24)
    weight, bias = torch.randn(24, 4), torch.randn(24)
    y = causal_conv1d(x, weight, bias, backend="fused")
    noisy = x.clone()
    noisy[:, 25:] = 1e3 * torch.randn(3, 15, 24)  # what follows step 24 changes nothing before
    torch.testing.assert_close(
        causal_conv1d(noisy, weight, bias, backend="fused")[:, :25], y[:, :25]
    )
    alone = causal_conv1d(x[1:2, :25], weight, bias, backend="fused")
    torch.testing.assert_close(alone[0], y[1, :25], rtol=0, atol=0)


def test_bf16_inputs_compute_in_fp32():
    torch.manual_seed(2)
    x = torch.randn(2, 30, 16).bfloat16()
    weight, bias = torch.randn(16, 4).bfloat16(), torch.randn(16).bfloat16()
    got = causal_conv1d(x, weight, bias, backend="fused")
    expected = causal_conv_reference(x.float(), weight.float(), bias.float(), True)
    assert got.dtype == torch.bfloat16
    assert relative_error(got.float(), expected.bfloat16().float()) < 1e-2


def block_outputs_and_grads(module, inputs, lengths, upstream):
    out = module(*inputs, lengths)
    out = out if isinstance(out, tuple) else (out,)
    loss = sum((o * u)[_valid(lengths, o)].sum() for o, u in zip(out, upstream, strict=True))
    params = dict(module.named_parameters())
    grads = torch.autograd.grad(loss, [*inputs, *params.values()])
    return out, dict(zip(["input"] * len(inputs) + list(params), grads, strict=True))


def _valid(lengths, out):
    return torch.arange(out.shape[1])[None, :] < lengths[:, None]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_block_matches_the_pytorch_block(bidirectional):
    """Outputs at valid steps and every parameter's gradient, lengths 1 to 2000,
    garbage in the padding."""
    torch.manual_seed(3)
    lengths = torch.tensor([1, 2, 333, 2000])
    block = Mamba(16, d_state=8, expand=2, bidirectional=bidirectional)
    x = torch.randn(4, 2000, 16)
    for i, length in enumerate(lengths.tolist()):
        x[i, length:] = 1e3 * torch.randn(2000 - length, 16)
    x.requires_grad_()
    upstream = (torch.randn(4, 2000, 16),)
    results = {}
    for backend in ("reference", "fused"):
        block.scan_backend = backend
        results[backend] = block_outputs_and_grads(block, (x,), lengths, upstream)
    (want,), want_grads = results["reference"]
    (got,), got_grads = results["fused"]
    valid = _valid(lengths, got)
    assert relative_error(got[valid], want[valid]) < 2e-5
    for name, grad in want_grads.items():
        assert relative_error(got_grads[name], grad) < 1e-4, name


class _TiedStreams(nn.Module):
    """An audio and a video Mamba block sharing ``A``, as the experts' blocks do
    (:func:`~dynmultidep.models.encoder.share_state_transitions`)."""

    def __init__(self, d_model: int, **options):
        super().__init__()
        self.audio, self.video = Mamba(d_model, **options), Mamba(d_model, **options)
        tie_state_transition(self.audio, self.video)

    def forward(self, audio, video, lengths=None):
        return self.audio(audio, lengths), self.video(video, lengths)


def test_fused_experts_sharing_a_match_the_pytorch_ones():
    torch.manual_seed(4)
    lengths = torch.tensor([5, 120])
    pair = _TiedStreams(12, d_state=4, expand=2, bidirectional=True)
    audio = torch.randn(2, 120, 12, requires_grad=True)
    video = torch.randn(2, 120, 12, requires_grad=True)
    upstream = (torch.randn(2, 120, 12), torch.randn(2, 120, 12))
    results = {}
    for backend in ("reference", "fused"):
        pair.audio.scan_backend = pair.video.scan_backend = backend
        results[backend] = block_outputs_and_grads(pair, (audio, video), lengths, upstream)
    (want_a, want_v), want_grads = results["reference"]
    (got_a, got_v), got_grads = results["fused"]
    valid = _valid(lengths, got_a)
    assert relative_error(got_a[valid], want_a[valid]) < 2e-5
    assert relative_error(got_v[valid], want_v[valid]) < 2e-5
    assert "audio.A_log" in want_grads and "video.A_log" not in want_grads  # one shared A
    for name, grad in want_grads.items():
        assert relative_error(got_grads[name], grad) < 1e-4, name


def test_auto_keeps_fp64_exact_and_skips_an_unneeded_input_gradient():
    torch.manual_seed(5)
    x = torch.randn(2, 20, 8, dtype=torch.float64)
    weight = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    got = causal_conv1d(x, weight, None)  # auto: fp64 goes to the exact reference
    torch.testing.assert_close(got, causal_conv_reference(x, weight, None, True), rtol=0, atol=0)
    x32, w32 = x.float(), weight.detach().float().requires_grad_()
    (grad,) = torch.autograd.grad(causal_conv1d(x32, w32, None, backend="fused").sum(), [w32])
    (want,) = torch.autograd.grad(causal_conv_reference(x32, w32, None, True).sum(), [w32])
    assert relative_error(grad, want) < 1e-5


@pytest.mark.parametrize("lengths", [None, [1, 2, 37, 64]])
@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_reverse_convolves_backwards_within_each_length(lengths, backend):
    """``reverse`` equals the convolution of each sequence reversed within its length,
    reversed back: values and every gradient, padding included."""
    torch.manual_seed(6)
    parent = torch.randn(4, 64, 2 * 40, requires_grad=True)
    x = parent[..., :40]  # strided, as in the block
    weight = torch.randn(40, 4, requires_grad=True)
    bias = torch.randn(40, requires_grad=True)
    n = lengths or [64] * 4

    def flip(t):
        out = t.clone()
        for b, k in enumerate(n):
            out[b, :k] = t[b, :k].flip(0)
        return out

    expected = flip(causal_conv_reference(flip(x), weight, bias, True))
    order = {"reverse": True, "lengths": None if lengths is None else torch.tensor(lengths)}
    got = causal_conv1d(x, weight, bias, True, backend=backend, **order)
    assert relative_error(got, expected) < 1e-6
    upstream = torch.randn_like(expected)
    leaves = [parent, weight, bias]
    want = torch.autograd.grad((expected * upstream).sum(), leaves)
    have = torch.autograd.grad((got * upstream).sum(), leaves)
    for name, a, e in zip(("x", "weight", "bias"), have, want, strict=True):
        assert relative_error(a, e) < 1e-5, name
