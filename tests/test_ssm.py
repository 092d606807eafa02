"""Every selective-scan path against the sequential reference: values and gradients."""

from __future__ import annotations

import pytest
import torch

from dynmultidep.ops.scan import (
    resolve_backend,
    selective_scan,
    selective_scan_channels_last,
    selective_scan_reference,
)


@pytest.fixture(autouse=True)
def _seeded():
    """The upstream gradients and weights drawn with ``torch.randn_like`` depend on no
    other test: each test starts the global generator from the same seed."""
    torch.manual_seed(0)


def make_inputs(batch, channels, length, n_state, delta_scale=1.0, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(dtype).requires_grad_()

    return {
        "u": randn(batch, channels, length),
        "delta": randn(batch, channels, length, scale=delta_scale),
        "A": (-torch.rand(channels, n_state, generator=g) * 4 - 0.1).requires_grad_(),
        "B": randn(batch, n_state, length),
        "C": randn(batch, n_state, length),
        "D": randn(channels),
        "z": randn(batch, channels, length),
        "delta_bias": randn(channels, scale=0.5),
    }


def channels_last_inputs(inputs):
    """The same leaves laid out ``(batch, L, channels)``, contiguous."""
    moved = {k: v.detach().transpose(1, 2).contiguous() if v.dim() == 3 else v.detach()
             for k, v in inputs.items()}  # fmt: skip
    return {k: v.requires_grad_() for k, v in moved.items()}


def run(inputs, backend, use, softplus, weights=None):
    """Output, last state and the gradients of a weighted sum of both."""
    args = {k: v for k, v in inputs.items() if k in ("u", "delta", "A", "B", "C") or k in use}
    y, last = selective_scan(
        **args, delta_softplus=softplus, return_last_state=True, backend=backend
    )
    weights = weights or (torch.randn_like(y.float()), torch.randn_like(last))
    loss = (y.float() * weights[0]).sum() + (last * weights[1]).sum()
    grads = torch.autograd.grad(loss, list(args.values()))
    return y, last, dict(zip(args, grads, strict=True)), weights


def assert_close(actual, expected, rtol, name):
    scale = expected.abs().max().clamp_min(1e-6)
    error = (actual.double() - expected.double()).abs().max() / scale
    assert error <= rtol, f"{name}: relative error {error:.2e} > {rtol:.0e}"


SHAPES = [
    (1, 1, 1, 1),
    (2, 5, 7, 3),
    (2, 70, 130, 16),
    (1, 33, 300, 12),
    (3, 129, 65, 16),
    (2, 3, 32, 2),
    (2, 3, 33, 2),
    (1, 4, 64, 3),
]  # fmt: skip  (chunk edges)
FAST = ("fused", "chunked")  # every fast path, each against the reference
OPTIONS = [
    ((), False),
    (("D",), False),
    (("z",), True),
    (("D", "z", "delta_bias"), True),
    (("delta_bias",), True),
]


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("use", "softplus"), OPTIONS)
def test_fast_paths_match_reference(backend, shape, use, softplus):
    delta_scale = 1.0 if softplus else 0.3  # a raw delta must stay positive-ish to be a step size
    inputs = make_inputs(*shape, delta_scale=delta_scale)
    if not softplus:
        inputs["delta"] = inputs["delta"].detach().abs().requires_grad_()
    y0, last0, grads0, weights = run(inputs, "reference", use, softplus)
    y1, last1, grads1, _ = run(inputs, backend, use, softplus, weights)
    assert_close(y1, y0, 2e-5, "y")
    assert_close(last1, last0, 2e-5, "last state")
    for name, grad in grads0.items():
        assert_close(grads1[name], grad, 5e-5, f"d{name}")


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize(
    ("shape", "delta_scale", "softplus"),
    [
        ((2, 40, 50, 16), 1e-3, False),  # tiny steps: the state barely moves
        ((2, 40, 50, 16), 30.0, False),  # huge steps: exp(delta A) underflows
        ((1, 6, 4096, 4), 1.0, True),  # the longest sequences the tests cover
    ],
)
def test_fast_paths_match_reference_at_the_extremes(backend, shape, delta_scale, softplus):
    inputs = make_inputs(*shape, delta_scale=delta_scale, seed=3)
    if not softplus:
        inputs["delta"] = inputs["delta"].detach().abs().requires_grad_()
    use = ("D", "z", "delta_bias") if softplus else ("D", "z")
    y0, last0, grads0, weights = run(inputs, "reference", use, softplus)
    y1, last1, grads1, _ = run(inputs, backend, use, softplus, weights)
    assert_close(y1, y0, 2e-5, "y")
    assert_close(last1, last0, 2e-5, "last state")
    for name, grad in grads0.items():
        assert_close(grads1[name], grad, 1e-4, f"d{name}")


@pytest.mark.parametrize("backend", FAST)
def test_bf16_inputs_compute_in_fp32_and_return_bf16(backend):
    inputs = make_inputs(2, 16, 40, 8, dtype=torch.bfloat16)
    use = ("D", "z", "delta_bias")
    y0, _, grads0, weights = run(inputs, "reference", use, True)
    y1, _, grads1, _ = run(inputs, backend, use, True, weights)
    assert y0.dtype == y1.dtype == torch.bfloat16
    assert_close(y1, y0, 1e-2, "y")
    for name, grad in grads0.items():
        assert grads1[name].dtype == inputs[name].dtype
        assert_close(grads1[name].float(), grad.float(), 2e-2, f"d{name}")


@pytest.mark.parametrize("backend", ("reference", *FAST))
def test_autocast_does_not_lower_the_scan_precision(backend):
    inputs = make_inputs(2, 16, 40, 8)
    args = {k: inputs[k].detach().requires_grad_() for k in ("u", "delta", "A", "B", "C")}
    expected = selective_scan_reference(**args, delta_softplus=True)
    upstream = torch.randn_like(expected)
    want = torch.autograd.grad((expected * upstream).sum(), list(args.values()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = selective_scan(**args, delta_softplus=True, backend=backend)
    # backward outside autocast, as PyTorch recommends (and Lightning does)
    grads = torch.autograd.grad((got * upstream).sum(), list(args.values()))
    assert got.dtype == torch.float32
    assert_close(got, expected, 2e-5, "y")
    for name, a, b in zip(args, grads, want, strict=True):
        assert_close(a, b, 5e-5, f"d{name}")


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize(("use", "softplus"), OPTIONS)
@pytest.mark.parametrize("channels", [64, 70])
def test_channels_last_layout_gives_the_same_values_and_gradients(backend, use, softplus, channels):
    """Both layouts agree with and without the optional inputs. The fused kernels read
    and write a whole channels-last block's rows directly (64 channels: one block of
    whole registers) and move a part of one through tiles (70 channels)."""
    _check_channels_last(backend, use, softplus, channels)


@pytest.mark.parametrize(("use", "softplus"), OPTIONS)
def test_row_passes_end_in_a_part_of_four_registers(use, softplus):
    """The fused kernels' softplus and gate passes take four registers at a time; at 40
    channels (a whole block of 5 registers on the AVX2 shape, 10 on the portable one)
    each row ends in fewer than four, read and written directly."""
    _check_channels_last("fused", use, softplus, 40)


def _check_channels_last(backend, use, softplus, channels):
    kept = ("u", "delta", "A", "B", "C", *use)
    inputs = {k: v for k, v in make_inputs(2, channels, 33, 8).items() if k in kept}
    if not softplus:  # a raw delta is a step size, as in test_fast_paths_match_reference
        inputs["delta"] = inputs["delta"].detach().abs().requires_grad_()
    expected = selective_scan(**inputs, delta_softplus=softplus, backend="reference")
    upstream = torch.randn_like(expected)
    grads = torch.autograd.grad((expected * upstream).sum(), list(inputs.values()))
    moved = {
        k: (v.detach().transpose(1, 2) if v.dim() == 3 else v.detach()) for k, v in inputs.items()
    }
    moved = {k: v.requires_grad_() for k, v in moved.items()}
    got = selective_scan_channels_last(**moved, delta_softplus=softplus, backend=backend)
    assert_close(got.transpose(1, 2), expected, 2e-5, "y")
    got_grads = torch.autograd.grad((got * upstream.transpose(1, 2)).sum(), list(moved.values()))
    for name, a, b in zip(inputs, got_grads, grads, strict=True):
        a = a.transpose(1, 2) if a.dim() == 3 else a
        assert_close(a, b, 5e-5, f"d{name}")


@pytest.mark.parametrize("backend", FAST)
def test_zero_inputs_and_single_steps_stay_finite(backend):
    inputs = {k: torch.zeros_like(v.detach()) for k, v in make_inputs(2, 8, 1, 4).items()}
    y = selective_scan(**inputs, delta_softplus=True, backend=backend)
    assert torch.isfinite(y).all() and (y == 0).all()


def test_backend_resolution():
    cpu = torch.device("cpu")
    assert resolve_backend("auto", cpu) == "fused"
    assert resolve_backend("reference", cpu) == "reference"
    assert resolve_backend("chunked", cpu) == "chunked"
    # a GPU without mamba_ssm (not installed here) gets the chunked parallel scan
    assert resolve_backend("auto", torch.device("cuda")) == "chunked"
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        resolve_backend("cuda", cpu)
    with pytest.raises(ValueError, match="unknown scan backend 'fast'"):
        resolve_backend("fast", cpu)


def test_chunked_scan_without_autograd_gives_the_same_values():
    """Inference skips the recomputation that bounds training memory: same numbers."""
    from dynmultidep.ops.scan.chunked import selective_scan_chunked

    inputs = make_inputs(2, 6, 75, 5)
    with_grad = selective_scan_chunked(**inputs, delta_softplus=True, chunk=16)
    with torch.inference_mode():
        plain = selective_scan_chunked(**inputs, delta_softplus=True, chunk=16)
    torch.testing.assert_close(plain, with_grad.detach(), rtol=0, atol=0)
    for chunk in (1, 7, 75, 200):  # any chunk length gives the reference's values
        got = selective_scan_chunked(**inputs, delta_softplus=True, chunk=chunk)
        assert_close(got.detach(), selective_scan_reference(**inputs, delta_softplus=True).detach(),
                     2e-5, f"chunk {chunk}")  # fmt: skip


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_scan_without_autograd_gives_the_same_values(channels_last):
    """Inference keeps no chunk states for a backward pass: the same output and last
    state, bit for bit, under ``inference_mode``, ``no_grad`` and on inputs without
    gradients, forward and backward in time."""
    inputs = make_inputs(3, 40, 150, 6, seed=9)
    if channels_last:
        inputs = channels_last_inputs(inputs)
    scan = selective_scan_channels_last if channels_last else selective_scan
    plain_inputs = {k: v.detach() for k, v in inputs.items()}
    for reverse in (False, True):
        order = {"reverse": reverse, "lengths": torch.tensor([150, 77, 1])}
        args = {"delta_softplus": True, "return_last_state": True, "backend": "fused", **order}
        y0, last0 = scan(**inputs, **args)
        assert y0.requires_grad
        for context in (torch.inference_mode, torch.no_grad):
            with context():
                y1, last1 = scan(**inputs, **args)
            torch.testing.assert_close(y1, y0.detach(), rtol=0, atol=0)
            torch.testing.assert_close(last1, last0.detach(), rtol=0, atol=0)
        y2, last2 = scan(**plain_inputs, **args)
        assert not y2.requires_grad
        torch.testing.assert_close(y2, y0.detach(), rtol=0, atol=0)
        torch.testing.assert_close(last2, last0.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("with_grad", [(), ("B",), ("C",)])
def test_fused_backward_takes_the_gradients_of_B_and_C_only_when_asked(channels_last, with_grad):
    """B and C without gradients: the backward leaves out their per-lane partial sums,
    and every other gradient keeps its bits; with either one asked for, the walk takes
    both and the one asked for has the bits of the full backward."""
    inputs = make_inputs(2, 40, 150, 6, seed=4)  # 40 channels: a partial register block
    if channels_last:
        inputs = channels_last_inputs(inputs)
    scan = selective_scan_channels_last if channels_last else selective_scan
    y = scan(**inputs, delta_softplus=True, backend="fused")
    weight = torch.randn_like(y)
    want = dict(zip(inputs, torch.autograd.grad((y * weight).sum(), list(inputs.values())),
                    strict=True))  # fmt: skip
    frozen = {k: v.detach() if k in ("B", "C") and k not in with_grad else v
              for k, v in inputs.items()}  # fmt: skip
    leaves = {k: v for k, v in frozen.items() if v.requires_grad}
    y = scan(**frozen, delta_softplus=True, backend="fused")
    have = torch.autograd.grad((y * weight).sum(), list(leaves.values()))
    assert set(leaves) == set(inputs) - {"B", "C"} | set(with_grad)
    for name, grad in zip(leaves, have, strict=True):
        torch.testing.assert_close(grad, want[name], rtol=0, atol=0, msg=f"d{name}")


def test_chunked_scan_training_memory_stays_within_its_bound():
    """Under autograd each state's T x T chunk weights (batch x d_inner x L x T values)
    are recomputed in the backward pass, not kept: each further state adds far less to
    what is saved for backward than its weights would."""
    from dynmultidep.ops.scan.chunked import CHUNK

    batch, channels, length = 2, 16, 512

    def saved_bytes(n_state: int) -> int:
        inputs = make_inputs(batch, channels, length, n_state)
        saved = []

        def pack(tensor):
            saved.append(tensor.numel() * tensor.element_size())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            y = selective_scan(**inputs, delta_softplus=True, backend="chunked")
        y.sum().backward()  # and the recomputing backward runs
        assert all(torch.isfinite(inputs[k].grad).all() for k in ("u", "delta", "A", "B", "C"))
        return sum(saved)

    one_state = batch * channels * length * CHUNK * 4  # bytes of one state's weights
    per_state = (saved_bytes(16) - saved_bytes(8)) / 8
    assert per_state < one_state / 4


def flipped_within(x: torch.Tensor, lengths: list[int], time_dim: int) -> torch.Tensor:
    """Each sample's first ``lengths[b]`` steps in reverse order, the rest in place."""
    out = x.clone()
    for b, n in enumerate(lengths):
        steps = torch.arange(n - 1, -1, -1)
        out[b].index_copy_(time_dim - 1, torch.arange(n), x[b].index_select(time_dim - 1, steps))
    return out


@pytest.mark.parametrize("backend", ("reference", *FAST))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("lengths", [None, [1, 70, 33]])
def test_reverse_scans_backwards_within_each_length(backend, channels_last, lengths):
    """``reverse`` equals the scan of each sequence reversed within its length, its
    output reversed back: values, last state and every gradient (padding included)."""
    inputs = make_inputs(3, 70, 70, 6, seed=5)
    if channels_last:
        inputs = channels_last_inputs(inputs)
    time_dim = 1 if channels_last else 2
    scan = selective_scan_channels_last if channels_last else selective_scan
    n = lengths or [70, 70, 70]
    seq = ("u", "delta", "B", "C", "z")
    flipped = {k: flipped_within(v, n, time_dim) if k in seq else v for k, v in inputs.items()}
    y0, last0 = scan(**flipped, delta_softplus=True, return_last_state=True, backend="reference")
    y0 = flipped_within(y0, n, time_dim)
    order = {"reverse": True, "lengths": None if lengths is None else torch.tensor(lengths)}
    y1, last1 = scan(**inputs, delta_softplus=True, return_last_state=True, backend=backend,
                     **order)  # fmt: skip
    assert_close(y1, y0, 2e-5, "y")
    assert_close(last1, last0, 2e-5, "last state")
    weights = torch.randn_like(y0), torch.randn_like(last0)
    leaves = list(inputs.values())
    want = torch.autograd.grad((y0 * weights[0]).sum() + (last0 * weights[1]).sum(), leaves)
    have = torch.autograd.grad((y1 * weights[0]).sum() + (last1 * weights[1]).sum(), leaves)
    for name, a, b in zip(inputs, have, want, strict=True):
        assert_close(a, b, 5e-5, f"d{name}")


def test_kernel_exp_is_within_a_few_ulp_of_float64():
    import numba
    import numpy as np

    from dynmultidep.ops.kernel_math import fast_exp, fast_softplus

    @numba.njit
    def apply(x, out_exp, out_softplus):
        for i in range(x.shape[0]):
            out_exp[i] = fast_exp(x[i])
            out_softplus[i] = fast_softplus(x[i])

    x = np.linspace(-87.0, 88.0, 2_000_001, dtype=np.float32)
    e, sp = np.empty_like(x), np.empty_like(x)
    apply(x, e, sp)
    # about 2 ulp, plus the rounding of x log2(e) to float32: as accurate as the exp of
    # x moved by about an ulp, the accuracy x itself has when the kernels compute it
    bound = 1.5e-7 + 8e-8 * np.abs(x.astype(np.float64))
    assert np.all(np.abs(e / np.exp(x.astype(np.float64)) - 1) <= bound)
    soft = np.logaddexp(0.0, x.astype(np.float64))
    assert np.all(np.abs(sp / soft - 1) <= bound + 1e-7)  # and the log1p series near 0
    far = np.array([-1e4, -200.0, 200.0, 1e4], dtype=np.float32)  # clamped, still normal
    e, sp = np.empty_like(far), np.empty_like(far)
    apply(far, e, sp)
    assert np.all(np.isfinite(e)) and e[0] >= np.finfo(np.float32).tiny


@pytest.mark.parametrize("lanes", [16, 48, 128])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_scan_gives_the_same_values_for_every_job_width(monkeypatch, lanes, channels_last):
    """Channel blocks of any width, the last one partial (100 channels), forward and
    backward in time within lengths: the same values and gradients as the reference."""
    from dynmultidep.ops.scan import cpu_kernel

    monkeypatch.setattr(cpu_kernel, "job_lanes", lambda *shape: lanes)
    inputs = make_inputs(3, 100, 70, 5, seed=7)
    if channels_last:
        inputs = channels_last_inputs(inputs)
    scan = selective_scan_channels_last if channels_last else selective_scan
    leaves = list(inputs.values())
    for reverse in (False, True):
        order = {"reverse": reverse, "lengths": torch.tensor([70, 41, 1])}
        outputs = {
            backend: scan(**inputs, delta_softplus=True, return_last_state=True,
                          backend=backend, **order)
            for backend in ("reference", "fused")
        }  # fmt: skip
        weights = [torch.randn_like(x) for x in outputs["reference"]]
        grads = {
            backend: torch.autograd.grad(
                sum((x * w).sum() for x, w in zip(out, weights, strict=True)), leaves
            )
            for backend, out in outputs.items()
        }
        names = ("y", "last state")
        for got, want, name in zip(outputs["fused"], outputs["reference"], names, strict=True):
            assert_close(got, want, 2e-5, name)
        for name, got, want in zip(inputs, grads["fused"], grads["reference"], strict=True):
            assert_close(got, want, 5e-5, f"d{name}")


def test_job_lanes_keep_whole_rows_unless_threads_would_idle():
    from dynmultidep.ops.scan.cpu_kernel import MIN_LANES, job_lanes
    from dynmultidep.ops.vectors import WIDTH

    assert job_lanes(8, 1024, 2) == 1024  # 8 jobs for 2 threads
    assert job_lanes(32, 1000, 2) == -(-1000 // WIDTH) * WIDTH  # up to whole registers
    assert job_lanes(1, 1024, 2) == 512  # one row per thread
    assert job_lanes(3, 1024, 2) == 512  # 6 jobs, 3 per thread
    assert job_lanes(1, 4096, 16) == MIN_LANES  # never narrower than MIN_LANES
    assert job_lanes(1, 70, 16) == -(-70 // WIDTH) * WIDTH  # a narrow block is never split
    assert job_lanes(8, 1024, 2, channels_last=False) == MIN_LANES  # tiles transposed in L1
    for batch in (1, 2, 3, 5, 7):
        for channels in (64, 300, 1024, 1536):
            lanes = job_lanes(batch, channels, 2)
            assert lanes % WIDTH == 0 and lanes >= min(MIN_LANES, channels)
