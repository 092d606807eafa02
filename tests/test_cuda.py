"""Every CUDA path, on a GPU (``pytest -m cuda``; skipped without one; ``make gpu-check``
runs them): the chunked scan against the reference, the whole model on CUDA against
the same weights on the CPU, batch invariance, dynamic inference, a checkpoint trained
on CUDA evaluated on the CPU, DDP on one GPU, and the optional kernel packages
(``causal_conv1d``, ``mamba_ssm``) where they are installed.

TF32 is off, as the project's configs keep it (``tf32: false``): fp32 on both sides.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from conftest import TINY_MODEL, run_script
from dynmultidep.gpu_check.plan import MOVE_TOLERANCE
from dynmultidep.models.dynmultidep import DynMultiDep
from dynmultidep.ops.backends import try_import
from dynmultidep.ops.causal_conv import causal_conv1d
from dynmultidep.ops.scan import selective_scan
from dynmultidep.tasks.run.builders import set_tf32
from test_models import DA, DV, SMALL, batch
from test_ssm import assert_close, make_inputs

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = torch.device("cuda")
LENGTHS = [1, 2, 17, 300, 4096]  # one batch, padded to the longest


@pytest.fixture(autouse=True, scope="module")
def fp32_on_the_gpu():
    """TF32 off (on by default in cuDNN's convolutions), as train.py keeps it (``tf32``)."""
    set_tf32(False)


def leaves(inputs: dict, device, dtype=None) -> dict:
    """Copies of ``inputs`` on ``device`` (sequences in ``dtype`` if given) that need grads."""
    moved = {}
    for name, value in inputs.items():
        value = value.detach().to(device)
        if dtype is not None and value.dim() == 3:
            value = value.to(dtype)
        moved[name] = value.requires_grad_()
    return moved


def scan_with_grads(inputs: dict, backend: str, lengths, reverse: bool, weights):
    """Output and every input's gradient of ``sum(y * weights)`` over valid steps."""
    y = selective_scan(**inputs, delta_softplus=True, backend=backend, reverse=reverse,
                       lengths=lengths)  # fmt: skip
    valid = torch.arange(y.shape[-1], device=y.device) < lengths.to(y.device)[:, None]
    loss = (y.float() * weights.to(y.device) * valid[:, None]).sum()
    grads = torch.autograd.grad(loss, list(inputs.values()))
    return y * valid[:, None], dict(zip(inputs, grads, strict=True))


def scan_case(seed: int = 0):
    inputs = make_inputs(len(LENGTHS), 8, max(LENGTHS), 4, seed=seed)
    lengths = torch.tensor(LENGTHS)
    for b, n in enumerate(LENGTHS):  # garbage in the padding
        for name in ("u", "delta", "B", "C", "z"):
            inputs[name].data[b, :, n:] = 10.0
    weights = torch.randn(len(LENGTHS), 8, max(LENGTHS))
    return inputs, lengths, weights


def assert_scan_on_cuda_matches_the_reference(backend, seed, reverse, rtol_y, rtol_grads):
    """``backend`` on CUDA against the reference on the CPU: valid outputs and gradients."""
    inputs, lengths, weights = scan_case(seed)
    want, want_grads = scan_with_grads(leaves(inputs, "cpu"), "reference", lengths, reverse,
                                       weights)  # fmt: skip
    got, got_grads = scan_with_grads(leaves(inputs, CUDA), backend, lengths.to(CUDA), reverse,
                                     weights)  # fmt: skip
    assert_close(got.cpu(), want, rtol_y, "y")
    for name, grad in want_grads.items():
        assert_close(got_grads[name].cpu(), grad, rtol_grads, f"d{name}")


@pytest.mark.parametrize("reverse", [False, True])
def test_chunked_scan_on_cuda_matches_the_reference(reverse):
    assert_scan_on_cuda_matches_the_reference("chunked", 0, reverse, 2e-5, 1e-4)


@pytest.mark.parametrize("reverse", [False, True])
def test_chunked_scan_under_bf16_autocast_computes_in_fp32(reverse):
    """bf16 sequences (what the block gives under autocast) against the fp32 reference of
    the same bf16 values: only bf16 rounding of the output and gradients apart."""
    inputs, lengths, weights = scan_case(1)
    rounded = {k: v.detach().to(torch.bfloat16).float() if v.dim() == 3 else v.detach()
               for k, v in inputs.items()}  # fmt: skip
    want, want_grads = scan_with_grads(leaves(rounded, "cpu"), "reference", lengths, reverse,
                                       weights)  # fmt: skip
    with torch.autocast("cuda", dtype=torch.bfloat16):
        cuda_inputs = leaves(inputs, CUDA, torch.bfloat16)
        got, got_grads = scan_with_grads(cuda_inputs, "chunked", lengths.to(CUDA), reverse,
                                         weights)  # fmt: skip
    assert got.dtype == torch.bfloat16
    assert_close(got.float().cpu(), want, 1e-2, "y")
    for name, grad in want_grads.items():
        assert got_grads[name].dtype == cuda_inputs[name].dtype
        assert_close(got_grads[name].float().cpu(), grad, 2e-2, f"d{name}")


def on(device, *tensors):
    return [t.to(device) for t in tensors]


def test_model_forward_and_backward_on_cuda_match_the_cpu():
    torch.manual_seed(0)
    cpu_model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), hard_gate=False,
                            **SMALL).eval()  # fmt: skip
    cuda_model = DynMultiDep(DA, DV, experts=("audio", "video", "fused"), hard_gate=False,
                             **SMALL).eval()  # fmt: skip
    cuda_model.load_state_dict(cpu_model.state_dict())
    cuda_model.to(CUDA)
    inputs = batch((40, 3, 17, 1))
    results = {}
    for name, model, device in (("cpu", cpu_model, "cpu"), ("cuda", cuda_model, CUDA)):
        out = model(*on(device, *inputs))
        grads = torch.autograd.grad(out.logits.sum(), list(model.parameters()))
        results[name] = out.logits.detach().cpu(), [g.cpu() for g in grads]
    (want, want_grads), (got, got_grads) = results["cpu"], results["cuda"]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    names = [n for n, _ in cpu_model.named_parameters()]
    for name, a, b in zip(names, got_grads, want_grads, strict=True):
        assert_close(a, b, 1e-3, f"d{name}")


def test_model_output_on_cuda_does_not_depend_on_batch_composition():
    torch.manual_seed(3)
    model = DynMultiDep(DA, DV, **SMALL).eval().to(CUDA)
    audio, video, lengths = on(CUDA, *batch((40, 3, 17)))
    together = model(audio, video, lengths).logits
    for i, n in enumerate(lengths.tolist()):
        alone = model(audio[i : i + 1, :n], video[i : i + 1, :n], lengths[i : i + 1]).logits
        torch.testing.assert_close(alone[0], together[i], rtol=1e-4, atol=1e-5)


def test_raw_gate_dynamic_inference_on_cuda_runs_only_the_chosen_experts():
    """The hard raw-statistics gate on CUDA tensors: each group of samples runs only its
    expert; the result equals the full computation and the CPU's, routes included."""
    torch.manual_seed(0)
    experts = ("audio", "video", "fused")
    model = DynMultiDep(DA, DV, gate_input="raw", experts=experts, **SMALL).eval()
    with torch.no_grad():  # a sharper gate: samples disagree, far from any tie
        model.gate.net[-1].weight.mul_(50.0)
    audio, video, lengths = batch((30, 12, 5, 1, 17, 9))
    audio[::2] += 4.0
    video[1::2] -= 4.0
    want = model(audio, video, lengths)
    model.to(CUDA)
    with torch.inference_mode():
        got = model(*on(CUDA, audio, video, lengths))
        reps, _ = model._representations(*on(CUDA, audio, video, lengths), ("audio", "video"))
        stacked = torch.stack([reps[e] for e in experts], dim=1)
        full = model.classifier((got.gate[..., None] * stacked).sum(1)).squeeze(-1)
    assert got.logits.device.type == CUDA.type
    torch.testing.assert_close(got.logits, full, rtol=1e-5, atol=1e-5)
    assert torch.equal(got.gate.argmax(-1).cpu(), want.gate.argmax(-1))
    assert len(set(want.gate.argmax(-1).tolist())) > 1
    torch.testing.assert_close(got.logits.cpu(), want.logits.detach(), rtol=1e-4, atol=1e-5)


def read_probabilities(path: Path) -> dict[str, float]:
    with open(path, newline="") as handle:
        return {row["id"]: float(row["probability"]) for row in csv.DictReader(handle)}


def tiny_run(tmp_path: Path, name: str) -> list[str]:
    return [
        "dataset.synthetic.preset=tiny", f"dataset.root={tmp_path}/corpus",
        "dataset.batch_size=8", "trainer.max_epochs=2", f"hydra.run.dir={tmp_path / name}",
        "callbacks.rich_progress_bar=null", "+trainer.enable_progress_bar=false", *TINY_MODEL,
    ]  # fmt: skip


def test_checkpoint_trained_on_cuda_gives_the_same_predictions_on_the_cpu(tmp_path):
    trained = run_script("train", "trainer=gpu", *tiny_run(tmp_path, "train"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["kernels"]["scan"] in (["chunked"], ["cuda"])  # never the CPU kernels
    checkpoint = torch.load(metrics["checkpoint"], map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())
    evaluated = run_script("eval", f"ckpt_path={metrics['checkpoint']}", "trainer=cpu",
                           f"hydra.run.dir={tmp_path / 'eval'}",
                           "callbacks.rich_progress_bar=null")  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    before = read_probabilities(tmp_path / "train" / "predictions.csv")
    after = read_probabilities(tmp_path / "eval" / "predictions.csv")
    assert before.keys() == after.keys()
    assert max(abs(before[k] - after[k]) for k in before) <= MOVE_TOLERANCE
    cpu_metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert cpu_metrics["kernels"]["scan"] == ["fused"]


def test_ddp_on_one_gpu_composes_and_runs(tmp_path):
    run = run_script("train", "trainer=ddp", "trainer.devices=1", *tiny_run(tmp_path, "ddp"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "ddp" / "metrics.json").is_file()


def test_bf16_mixed_training_on_cuda_runs_and_logs_its_peak_memory(tmp_path):
    run = run_script("train", "trainer=gpu", "trainer.precision=bf16-mixed",
                     *tiny_run(tmp_path, "bf16"))  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    with open(tmp_path / "bf16" / "csv" / "metrics.csv", newline="") as handle:
        peaks = [float(r["perf/peak_memory_mib"]) for r in csv.DictReader(handle)
                 if r.get("perf/peak_memory_mib")]  # fmt: skip
    assert len(peaks) == 2 and all(p > 0 for p in peaks)


needs_causal_conv1d = pytest.mark.skipif(
    importlib.util.find_spec("causal_conv1d") is None, reason="causal_conv1d not installed"
)
needs_mamba_ssm = pytest.mark.skipif(
    importlib.util.find_spec("mamba_ssm") is None, reason="mamba_ssm not installed"
)


def assert_imports(package: str) -> None:
    """An installed package must import: its reason otherwise (another torch, a missing
    dependency) is the failure."""
    _, reason = try_import(package)
    assert reason is None, f"{package} is installed but does not import: {reason}"


@needs_causal_conv1d
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reverse", [False, True])
def test_causal_conv1d_matches_the_reference(reverse, dtype):
    assert_imports("causal_conv1d")
    torch.manual_seed(5)
    lengths = torch.tensor([1, 90, 333], device=CUDA)
    x = torch.randn(3, 333, 64, device=CUDA, dtype=dtype, requires_grad=True)
    weight = torch.randn(64, 4, device=CUDA, requires_grad=True)
    bias = torch.randn(64, device=CUDA, requires_grad=True)
    valid = (torch.arange(333, device=CUDA) < lengths[:, None])[..., None]
    results = {}
    for backend in ("reference", "cuda"):  # bf16: as in the block, under autocast
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            y = causal_conv1d(x, weight, bias, backend=backend, reverse=reverse,
                              lengths=lengths)  # fmt: skip
        assert y.dtype == dtype
        grads = torch.autograd.grad((y.float() * valid).sum(), (x, weight, bias))
        results[backend] = (y.float() * valid, *grads)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    for name, got, want in zip(("y", "dx", "dweight", "dbias"), results["cuda"],
                               results["reference"], strict=True):  # fmt: skip
        assert_close(got.float(), want.float(), tolerance, name)


@needs_mamba_ssm
@pytest.mark.parametrize("reverse", [False, True])
def test_mamba_ssm_scan_matches_the_reference(reverse):
    """mamba_ssm builds with --use_fast_math (approximate exponentials): 1e-4 and 5e-4
    where the exact fp32 paths keep 2e-5 and 1e-4."""
    assert_imports("mamba_ssm")
    assert_scan_on_cuda_matches_the_reference("cuda", 2, reverse, 1e-4, 5e-4)
