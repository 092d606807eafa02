"""What the GPU check runs, and at which sizes on each device.

On CUDA the check trains the D-Vlog recipe model on the full-size synthetic D-Vlog;
``--device cpu`` runs the same steps at tiny sizes, so that the check's own logic is
tested without a GPU (``tests/test_gpu_check.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

# in order; build_kernels and bench_kernels run only when time is left
STEPS = ("environment", "cuda_tests", "corpus", "train_32", "train_bf16", "eval_cpu", "bench",
         "build_kernels", "bench_kernels")  # fmt: skip
OPTIONAL_STEPS = ("build_kernels", "bench_kernels")
# what each step reads from the steps before it; the runner adds them when asked for a part
NEEDS = {"train_32": ("corpus",), "train_bf16": ("corpus",), "eval_cpu": ("train_32",),
         "bench": ("corpus",), "build_kernels": ("environment",),
         "bench_kernels": ("build_kernels", "corpus")}  # fmt: skip
PRECISIONS = {"train_32": "32-true", "train_bf16": "bf16-mixed"}
# a checkpoint moved from the training device to the CPU gives the same probabilities
MOVE_TOLERANCE = 1e-4
# the optional packages' source distributions, in the order they are built
KERNEL_PACKAGES = ("causal_conv1d", "mamba_ssm")

TINY_MODEL = ("model.d_model=16", "model.d_ffn=32", "model.expand=2", "model.d_state=4")


@dataclass(frozen=True)
class CheckPlan:
    """Sizes of one check.

    Attributes:
        device: ``cuda`` or ``cpu``: where the training runs and benchmarks run.
        preset: the synthetic D-Vlog preset the training runs use.
        epochs: training epochs per precision.
        max_tokens: the batches' token budget (the throughput benchmark's), or None.
        bench_plan: the ``scripts/bench.py --plan`` of the benchmark steps.
        model: model overrides (none: the recipe model).
        budget_s: the whole check's time budget; steps that cannot fit are skipped.
        estimates_s: each step's expected time, used to keep time for the later ones.
    """

    device: str
    preset: str
    epochs: int
    max_tokens: int | None
    bench_plan: str
    model: tuple[str, ...]
    budget_s: float
    estimates_s: dict[str, float]


PLANS = {
    "cuda": CheckPlan(
        device="cuda", preset="full", epochs=3, max_tokens=32768, bench_plan="cuda", model=(),
        budget_s=470.0,
        estimates_s={"environment": 10, "cuda_tests": 150, "corpus": 15, "train_32": 60,
                     "train_bf16": 50, "eval_cpu": 40, "bench": 100, "build_kernels": 300,
                     "bench_kernels": 150},
    ),
    "cpu": CheckPlan(
        device="cpu", preset="tiny", epochs=2, max_tokens=None, bench_plan="tiny",
        model=TINY_MODEL, budget_s=300.0,
        estimates_s={"environment": 5, "cuda_tests": 30, "corpus": 5, "train_32": 20,
                     "train_bf16": 20, "eval_cpu": 15, "bench": 40, "build_kernels": 5,
                     "bench_kernels": 5},
    ),
}  # fmt: skip
