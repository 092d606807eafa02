"""Mamba blocks: mamba_ssm-compatible parameters, the equations, batch invariance, sharing."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dynmultidep.models.mamba import Mamba, tie_state_transition
from dynmultidep.ops.time_order import reverse_within_length

# mamba_ssm.modules.mamba_simple.Mamba(d_model=16, d_state=4, expand=2): dt_rank = ceil(16/16) = 1
MAMBA_SSM_STATE = {
    "A_log": (32, 4), "D": (32,), "in_proj.weight": (64, 16), "conv1d.weight": (32, 1, 4),
    "conv1d.bias": (32,), "x_proj.weight": (9, 32), "dt_proj.weight": (32, 1),
    "dt_proj.bias": (32,), "out_proj.weight": (16, 32),
}  # fmt: skip


def test_parameter_names_and_shapes_match_mamba_ssm():
    block = Mamba(16, d_state=4, expand=2)
    assert {k: tuple(v.shape) for k, v in block.state_dict().items()} == MAMBA_SSM_STATE
    state = {k: torch.randn(shape) for k, shape in MAMBA_SSM_STATE.items()}
    block.load_state_dict(state, strict=True)
    bidirectional = Mamba(16, d_state=4, expand=2, bidirectional=True)
    extra = set(bidirectional.state_dict()) - set(MAMBA_SSM_STATE)
    assert extra == {"A_b_log", "D_b", "conv1d_b.weight", "conv1d_b.bias", "x_proj_b.weight",
                     "dt_proj_b.weight", "dt_proj_b.bias"}  # fmt: skip


def test_initialisation_follows_mamba():
    torch.manual_seed(0)
    block = Mamba(64, d_state=8, expand=2, dt_min=0.002, dt_max=0.05, bidirectional=True)
    expected_a = torch.log(torch.arange(1, 9, dtype=torch.float32)).repeat(128, 1)
    for suffix, a_log, d in (("", block.A_log, block.D), ("_b", block.A_b_log, block.D_b)):
        torch.testing.assert_close(a_log.data, expected_a)
        assert torch.equal(d.data, torch.ones(128))
        assert a_log._no_weight_decay and d._no_weight_decay
        dt_proj = getattr(block, f"dt_proj{suffix}")
        step = F.softplus(dt_proj.bias.data)
        assert step.min() >= 0.002 * (1 - 1e-4) and step.max() <= 0.05 * (1 + 1e-4)
        assert dt_proj.weight.abs().max() <= block.dt_rank**-0.5
    assert block.dt_rank == math.ceil(64 / 16)


def sequential_mamba(block: Mamba, x: torch.Tensor) -> torch.Tensor:
    """Mamba's equations for one unpadded sequence ``x: (L, d_model)``, step by
    step in float64, written independently of the module's code path."""
    p = {k: v.double() for k, v in block.state_dict().items()}
    length = x.shape[0]

    def direction(xs, zs, suffix, a_name, d_name):
        weight, bias = p[f"conv1d{suffix}.weight"][:, 0], p[f"conv1d{suffix}.bias"]
        A = -torch.exp(p[a_name])
        h = torch.zeros(block.d_inner, block.d_state, dtype=torch.float64)
        out = []
        for t in range(length):
            conv = bias.clone()
            for k in range(block.d_conv):  # tap k sees step t - (d_conv - 1 - k)
                s = t - (block.d_conv - 1 - k)
                if s >= 0:
                    conv += weight[:, k] * xs[s]
            u = F.silu(conv)
            proj = p[f"x_proj{suffix}.weight"] @ u
            dt = proj[: block.dt_rank]
            Bt = proj[block.dt_rank : block.dt_rank + block.d_state]
            Ct = proj[block.dt_rank + block.d_state :]
            delta = F.softplus(p[f"dt_proj{suffix}.weight"] @ dt + p[f"dt_proj{suffix}.bias"])
            h = torch.exp(delta[:, None] * A) * h + (delta * u)[:, None] * Bt[None, :]
            y = h @ Ct + p[d_name] * u
            out.append(y * F.silu(zs[t]))
        return torch.stack(out)

    xz = x.double() @ p["in_proj.weight"].T
    xs, zs = xz.chunk(2, dim=-1)
    y = direction(xs, zs, "", "A_log", "D")
    if block.bidirectional:
        y_b = direction(xs.flip(0), zs.flip(0), "_b", "A_b_log", "D_b").flip(0)
        y = 0.5 * (y + y_b)
    return y @ p["out_proj.weight"].T


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_block_computes_the_mamba_equations(bidirectional, backend):
    torch.manual_seed(1)
    block = Mamba(
        12, d_state=5, d_conv=3, expand=2, bidirectional=bidirectional, scan_backend=backend
    )
    x = torch.randn(23, 12)
    expected = sequential_mamba(block, x)
    got = block(x[None])[0]
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_block_under_bf16_autocast_follows_the_fp32_block(backend):
    torch.manual_seed(3)
    block = Mamba(16, d_state=4, expand=2, bidirectional=True, scan_backend=backend)
    x, lengths = torch.randn(3, 40, 16), torch.tensor([40, 17, 1])
    upstream = torch.randn(3, 40, 16)

    def run(autocast: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = block(x, lengths)
        grads = torch.autograd.grad((y.float() * upstream).sum(), list(block.parameters()))
        return y, grads

    (y32, grads32), (y16, grads16) = run(False), run(True)
    assert y16.dtype == torch.bfloat16  # out_proj is a bf16 product
    valid = torch.arange(40) < lengths[:, None]
    assert _relative(y16[valid], y32[valid]) < 1e-2
    for (name, _), g32, g16 in zip(block.named_parameters(), grads32, grads16, strict=True):
        assert g16.dtype == torch.float32, name
        assert _relative(g16, g32) < 3e-2, name


def test_bidirectional_output_does_not_depend_on_batch_padding():
    torch.manual_seed(2)
    block = Mamba(16, d_state=8, expand=2, bidirectional=True)
    lengths = torch.tensor([1, 2, 7, 300])
    batch = torch.randn(4, 300, 16)
    together = block(batch, lengths)
    for i, length in enumerate(lengths.tolist()):
        alone = block(batch[i : i + 1, :length], lengths[i : i + 1])
        torch.testing.assert_close(together[i, :length], alone[0], rtol=1e-5, atol=1e-5)
        # and garbage in the padding changes nothing in the valid steps
    noisy = batch.clone()
    for i, length in enumerate(lengths.tolist()):
        noisy[i, length:] = 1e3 * torch.randn(300 - length, 16)
    again = block(noisy, lengths)
    for i, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(again[i, :length], together[i, :length], rtol=1e-5, atol=1e-5)


def test_reverse_within_length_is_an_involution_that_keeps_padding_in_place():
    x = torch.arange(10.0).view(2, 5, 1)
    lengths = torch.tensor([5, 3])
    r = reverse_within_length(x, lengths)
    assert r[0, :, 0].tolist() == [4, 3, 2, 1, 0]
    assert r[1, :, 0].tolist() == [7, 6, 5, 8, 9]
    assert torch.equal(reverse_within_length(r, lengths), x)


def test_forward_only_block_is_causal():
    torch.manual_seed(3)
    block = Mamba(8, d_state=4, expand=2, bidirectional=False)
    x = torch.randn(1, 20, 8)
    changed = x.clone()
    changed[:, 12:] += 5.0
    torch.testing.assert_close(block(x)[:, :12], block(changed)[:, :12])
    assert not torch.allclose(block(x)[:, 12:], block(changed)[:, 12:])


def _streams(share: bool, **options) -> nn.ModuleDict:
    """An audio and a video Mamba block, tied as the experts' blocks are
    (:func:`~dynmultidep.models.encoder.share_state_transitions` calls the same tie)."""
    streams = nn.ModuleDict({m: Mamba(8, d_state=4, expand=2, **options) for m in ("a", "v")})
    if share:
        tie_state_transition(streams["a"], streams["v"])
    return streams


def test_cross_modal_streams_share_one_state_transition():
    shared = _streams(True, bidirectional=True)
    audio_block, video_block = shared["a"], shared["v"]
    assert audio_block.A_log is video_block.A_log
    assert audio_block.A_b_log is video_block.A_b_log
    assert audio_block.in_proj.weight is not video_block.in_proj.weight
    assert audio_block.D is not video_block.D
    names = [n for n, _ in shared.named_parameters()]
    assert "v.A_log" not in names  # registered once
    audio, video = torch.randn(2, 9, 8), torch.randn(2, 9, 8)
    ya, yv = audio_block(audio), video_block(video)
    grad_audio = torch.autograd.grad(ya.sum(), audio_block.A_log, retain_graph=True)[0]
    grad_video = torch.autograd.grad(yv.sum(), audio_block.A_log)[0]
    assert grad_audio.abs().sum() > 0 and grad_video.abs().sum() > 0  # both streams train it

    separate = _streams(False)
    assert separate["a"].A_log is not separate["v"].A_log
    n_shared = sum(p.numel() for p in shared.parameters())
    n_separate = sum(p.numel() for p in _streams(False, bidirectional=True).parameters())
    assert n_separate - n_shared == 2 * 16 * 4
    with pytest.raises(ValueError, match="different shapes or directions"):
        tie_state_transition(Mamba(8, d_state=4), Mamba(8, d_state=8))


@pytest.mark.cuda
@pytest.mark.skipif(
    importlib.util.find_spec("mamba_ssm") is None or not torch.cuda.is_available(),
    reason="needs mamba_ssm and a GPU",
)
def test_state_dict_from_mamba_ssm_gives_the_same_output():
    from mamba_ssm.modules.mamba_simple import Mamba as ReferenceMamba

    torch.manual_seed(4)
    theirs = ReferenceMamba(32, d_state=8, expand=2).cuda()
    ours = Mamba(32, d_state=8, expand=2).cuda()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 50, 32, device="cuda")
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
