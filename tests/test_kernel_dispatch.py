"""The optional CUDA kernel packages (``mamba_ssm``, ``causal_conv1d``): used where they
import, one warning and a recorded fallback where they don't.

The real packages need CUDA to build, so these tests install stand-in packages that
record their calls and compute with the references, and let CPU tensors take the CUDA
dispatch (``backends.KERNEL_DEVICE_TYPES``): what runs is the project's glue around
the kernels (layouts, dtypes, the reversed direction, the record), checked against the
reference block.
"""

from __future__ import annotations

import json
import logging
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from conftest import QUIET, TINY_MODEL, compose_config
from dynmultidep.models.mamba import Mamba
from dynmultidep.ops import backends
from dynmultidep.ops.causal_conv import (
    causal_conv1d,
    causal_conv_reference,
    resolve_conv_backend,
)
from dynmultidep.ops.scan import resolve_backend, selective_scan_reference
from dynmultidep.tasks.run.builders import set_tf32
from dynmultidep.tasks.train import train


class StandIns:
    """``causal_conv1d_fn`` and ``selective_scan_fn`` with the packages' signatures,
    computed by the references; each call is kept in ``calls``."""

    def __init__(self):
        self.calls: list[dict] = []

    def causal_conv1d_fn(self, x, weight, bias=None, seq_idx=None, initial_states=None,
                         return_final_states=False, final_states_out=None,
                         activation=None):  # fmt: skip
        self.calls.append({"op": "conv", "channels_last": x.stride(1) == 1, "x": x.dtype,
                           "weight": weight.dtype, "activation": activation})  # fmt: skip
        taps = weight.shape[1]
        y = F.conv1d(x, weight[:, None, :], bias, padding=taps - 1, groups=weight.shape[0])
        y = y[..., : x.shape[-1]]
        return F.silu(y) if activation == "silu" else y

    def selective_scan_fn(self, u, delta, A, B, C, D=None, z=None, delta_bias=None,
                          delta_softplus=False, return_last_state=False):  # fmt: skip
        contiguous = all(t.is_contiguous() for t in (u, delta, B, C, z) if t is not None)
        self.calls.append({"op": "scan", "contiguous": contiguous, "u": u.dtype, "A": A.dtype,
                           "shape": tuple(u.shape)})  # fmt: skip
        return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                        return_last_state)  # fmt: skip


@pytest.fixture
def kernels(monkeypatch):
    """A fresh import cache and record; CPU tensors take the CUDA dispatch."""
    backends.try_import.cache_clear()
    backends.reset_record()
    monkeypatch.setattr(backends, "KERNEL_DEVICE_TYPES", ("cuda", "cpu"))
    yield monkeypatch
    backends.try_import.cache_clear()
    backends.reset_record()


def install_stand_ins(monkeypatch) -> StandIns:
    stand_ins = StandIns()
    conv = types.ModuleType("causal_conv1d")
    conv.causal_conv1d_fn = stand_ins.causal_conv1d_fn
    monkeypatch.setitem(sys.modules, "causal_conv1d", conv)
    interface = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    interface.selective_scan_fn = stand_ins.selective_scan_fn
    for name in ("mamba_ssm", "mamba_ssm.ops"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, interface.__name__, interface)
    return stand_ins


def hide_packages(monkeypatch) -> None:
    """Both packages absent: importing them raises ImportError."""
    for name in ("causal_conv1d", "mamba_ssm", "mamba_ssm.ops",
                 "mamba_ssm.ops.selective_scan_interface"):  # fmt: skip
        monkeypatch.setitem(sys.modules, name, None)


def valid(lengths: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.shape[1]) < lengths[:, None]


def block_and_reference(seed: int = 0) -> tuple[Mamba, Mamba]:
    """A bidirectional block on the default backends and the same weights in plain PyTorch."""
    torch.manual_seed(seed)
    block = Mamba(16, d_state=4, expand=2, bidirectional=True)
    reference = Mamba(16, d_state=4, expand=2, bidirectional=True, scan_backend="reference")
    reference.load_state_dict(block.state_dict())
    return block, reference


@pytest.mark.parametrize("reverse", [False, True])
def test_conv_auto_uses_causal_conv1d_in_its_channels_last_layout(kernels, reverse):
    stand_ins = install_stand_ins(kernels)
    torch.manual_seed(1)
    x, lengths = torch.randn(3, 30, 16), torch.tensor([30, 11, 1])
    weight, bias = torch.randn(16, 4), torch.randn(16)
    got = causal_conv1d(x, weight, bias, reverse=reverse, lengths=lengths)
    want = causal_conv_reference(x, weight, bias, True, reverse, lengths)
    mask = valid(lengths, x)
    torch.testing.assert_close(got[mask], want[mask], rtol=1e-6, atol=1e-6)
    assert stand_ins.calls == [{"op": "conv", "channels_last": True, "x": torch.float32,
                                "weight": torch.float32, "activation": "silu"}]  # fmt: skip
    assert backends.kernels_used()["conv"] == ["cuda"]


def test_conv_kernel_gets_its_weights_in_the_inputs_dtype(kernels):
    """causal_conv1d takes one dtype; under autocast the block's x is bf16, its weights fp32."""
    stand_ins = install_stand_ins(kernels)
    x = torch.randn(2, 9, 8, dtype=torch.bfloat16)
    y = causal_conv1d(x, torch.randn(8, 4), torch.randn(8), silu=False)
    assert y.dtype == torch.bfloat16
    assert stand_ins.calls[0]["weight"] == torch.bfloat16
    assert stand_ins.calls[0]["activation"] is None


def test_block_runs_both_kernels_in_both_directions_and_matches_the_reference(kernels):
    stand_ins = install_stand_ins(kernels)
    block, reference = block_and_reference()
    x, lengths = torch.randn(3, 40, 16), torch.tensor([40, 17, 1])
    x[1, 17:] = 1e3  # garbage in the padding: never reaches valid steps
    x.requires_grad_()
    mask = valid(lengths, x)
    want = reference(x, lengths)
    grad_want = torch.autograd.grad(want[mask].sum(), x)[0]
    backends.reset_record()
    got = block(x, lengths)
    torch.testing.assert_close(got[mask], want[mask], rtol=1e-5, atol=1e-5)
    grad_got = torch.autograd.grad(got[mask].sum(), x)[0]
    torch.testing.assert_close(grad_got, grad_want, rtol=1e-4, atol=1e-5)
    ops = [call["op"] for call in stand_ins.calls]
    assert ops == ["conv", "scan", "conv", "scan"]  # forward direction, then backward
    scans = [call for call in stand_ins.calls if call["op"] == "scan"]
    # mamba_ssm's layout (batch, d_inner, L), contiguous, A in fp32
    assert all(c["contiguous"] and c["A"] == torch.float32 and c["shape"] == (3, 32, 40)
               for c in scans)  # fmt: skip
    assert backends.kernels_used() == {"conv": ["cuda"], "scan": ["cuda"], "fallbacks": {}}


def test_missing_packages_warn_once_each_and_the_fallbacks_are_recorded(kernels, caplog):
    hide_packages(kernels)
    block, reference = block_and_reference(2)
    x, lengths = torch.randn(2, 25, 16), torch.tensor([25, 8])
    with caplog.at_level(logging.WARNING, logger=backends.__name__):
        first = block(x, lengths)
        block(x, lengths)  # the second time: no new warning
    warnings = [r.getMessage() for r in caplog.records if r.name == backends.__name__]
    assert len(warnings) == 2, warnings
    scan = next(w for w in warnings if w.startswith("mamba_ssm"))
    conv = next(w for w in warnings if w.startswith("causal_conv1d"))
    assert "ModuleNotFoundError" in scan and "chunked PyTorch scan" in scan
    assert "ModuleNotFoundError" in conv and "PyTorch's conv1d" in conv
    used = backends.kernels_used()
    mask = valid(lengths, x)
    torch.testing.assert_close(first[mask], reference(x, lengths)[mask], rtol=1e-5, atol=1e-5)
    assert used["scan"] == ["chunked"] and used["conv"] == ["reference"]
    assert set(used["fallbacks"]) == {"mamba_ssm", "causal_conv1d"}
    assert all("ModuleNotFoundError" in reason for reason in used["fallbacks"].values())
    backends.reset_record()  # a new run: its own record, and still no new warning
    block(x, lengths)
    assert backends.kernels_used()["fallbacks"].keys() == {"mamba_ssm", "causal_conv1d"}
    assert len([r for r in caplog.records if r.name == backends.__name__]) == 2


def test_a_package_built_for_another_torch_is_reported_with_its_reason(kernels, tmp_path, caplog):
    """An installed package whose extension does not load: the loader's own message."""
    package = tmp_path / "causal_conv1d"
    package.mkdir()
    (package / "__init__.py").write_text(
        "raise ImportError('causal_conv1d_cuda.so: undefined symbol: _ZN3c104cuda9SetDevice')\n"
    )
    kernels.delitem(sys.modules, "causal_conv1d", raising=False)
    kernels.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger=backends.__name__):
        assert resolve_conv_backend("auto", torch.zeros(1, 4, 8)) == "reference"
    (message,) = [r.getMessage() for r in caplog.records if r.name == backends.__name__]
    assert message.startswith("causal_conv1d is not usable (ImportError: ")
    assert "undefined symbol" in message and "PyTorch's conv1d" in message


def test_cpu_tensors_never_import_the_packages(monkeypatch):
    """Without a GPU nothing is tried: no import, no warning, the fused kernels run."""
    backends.try_import.cache_clear()
    backends.reset_record()
    hide_packages(monkeypatch)
    block, _ = block_and_reference(3)
    block(torch.randn(2, 12, 16), torch.tensor([12, 5]))
    assert backends.try_import.cache_info().currsize == 0
    assert backends.kernels_used() == {"conv": ["fused"], "scan": ["fused"], "fallbacks": {}}
    backends.reset_record()


def test_asking_for_a_cuda_kernel_explicitly_never_falls_back(kernels):
    hide_packages(kernels)
    x = torch.zeros(1, 4, 8)
    with pytest.raises(ValueError, match="needs CUDA tensors and the causal-conv1d package"):
        resolve_conv_backend("cuda", x)
    with pytest.raises(ValueError, match="needs CUDA tensors and the mamba-ssm package"):
        resolve_backend("cuda", x.device)
    with pytest.raises(ValueError, match="unknown conv backend 'fast'"):
        resolve_conv_backend("fast", x)


def test_conv_kernel_gets_a_contiguous_copy_where_channels_last_cannot_serve(kernels):
    """The channels-last kernel needs channels in multiples of 8: 12 are copied."""
    stand_ins = install_stand_ins(kernels)
    x, weight = torch.randn(2, 10, 12), torch.randn(12, 3)
    got = causal_conv1d(x, weight, None)
    torch.testing.assert_close(got, causal_conv_reference(x, weight, None, True))
    assert stand_ins.calls[0]["channels_last"] is False


def test_training_on_the_paths_a_gpu_takes_without_the_packages(tmp_path, synthetic_corpus):
    """The chunked scan and PyTorch's convolution (what runs on a GPU without mamba_ssm
    and causal_conv1d), chosen by config: a whole run, and metrics.json says so."""
    root, _ = synthetic_corpus("dvlog", "tiny")
    cfg = compose_config("train", [
        "dataset=dvlog", f"dataset.root={root}", "dataset.batch_size=8", "trainer.max_epochs=1",
        f"paths.output_dir={tmp_path}", "model.scan_backend=chunked",
        "model.conv_backend=reference", *TINY_MODEL, *QUIET,
    ])  # fmt: skip
    train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["kernels"] == {"conv": ["reference"], "scan": ["chunked"], "fallbacks": {}}


def gpu_fp32_precisions() -> tuple[str, str]:
    return torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision


@pytest.mark.parametrize("task", ["train", "eval", "predict"])
def test_tf32_is_a_config_switch_off_by_default(task):
    """Full fp32 on GPUs unless ``tf32=true`` (the flags are settable without a GPU)."""
    assert compose_config(task).tf32 is False
    try:
        set_tf32(True)
        assert gpu_fp32_precisions() == ("tf32", "tf32")
    finally:
        set_tf32(False)
    assert gpu_fp32_precisions() == ("ieee", "ieee")
