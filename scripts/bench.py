#!/usr/bin/env python
"""Benchmarks a reader can rerun: ``make bench`` (``make bench-quick`` for a subset).

    python scripts/bench.py --json logs/bench.json --markdown logs/bench.md
    python scripts/bench.py --quick
    python scripts/bench.py --device cuda --json logs/bench_gpu.json     # on a GPU (plan cuda)

Sections (``dynmultidep.bench``): ``scan`` (selective scan against the references and
the machine's arithmetic bound), ``step`` (one training step of the recipe model,
profiled by op group; the paper recipe's step with and without MTEM), ``memory`` (peak
memory against sequence length, the recipe's model and the paper's),
``throughput`` (a training epoch of the D-Vlog recipe, bucketed vs random batches),
``trained`` (dynamic inference and missing modalities, on models trained first),
``learnability`` (the quick plan of ``scripts/learnability.py``: every cue family at
the small size; its targets need the full plan, ``python scripts/learnability.py``),
``extraction`` (feature extraction from 720p vlogs against real time),
``interview_reading`` (a DAIC-WOZ twin of the release's size read into its prepared
corpus, cold and cached; the table parser's kernel against its reference),
``interview_tasks`` (PHQ-8 regression and the binary task on the DAIC-WOZ and E-DAIC
twins over seeds, against the mean and median predictors and the majority class).
Figures are medians of repeated runs in one process; ratios are measured in the same
run. While it runs, one line per job on stderr says the section, the job and the
time since the start. Prints one table per section and the targets met or missed; ``--json`` and
``--markdown`` write the same results. Plans (``--plan``): ``full`` (``make bench``),
``quick`` (``--quick``), ``cuda`` (the default with ``--device cuda``: scan and
throughput on a GPU, the sizes the GPU check runs) and ``tiny`` (seconds; the GPU
check's own test on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

from dynmultidep.atomic import write_text_atomic
from dynmultidep.bench.extraction import bench_extraction
from dynmultidep.bench.interview_reading import READ_TARGET_S, bench_interview_reading
from dynmultidep.bench.interview_tasks import bench_interview_tasks
from dynmultidep.bench.interview_tasks import tables as interview_tasks_tables
from dynmultidep.bench.memory import bench_memory
from dynmultidep.bench.progress import Progress
from dynmultidep.bench.scan import bench_scan, bench_scan_cuda, scan_costs
from dynmultidep.bench.step import bench_step
from dynmultidep.bench.tables import markdown_tables, print_tables
from dynmultidep.bench.throughput import EPOCH_TARGET_S, bench_throughput
from dynmultidep.bench.trained import DYNAMIC, bench_trained
from dynmultidep.learnability.plan import PLANS as LEARNABILITY_PLANS
from dynmultidep.learnability.report import summarize
from dynmultidep.learnability.report import tables as learnability_tables
from dynmultidep.learnability.runner import plan_jobs, run_plan
from dynmultidep.ops.host import describe_host

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
SECTIONS = ("scan", "step", "memory", "throughput", "trained", "learnability", "extraction",
            "interview_reading", "interview_tasks")  # fmt: skip
# what each section runs: full (make bench) and --quick (make bench-quick)
PLANS = {
    "full": {
        "scan": {"lengths": [256, 600, 2048, 4096], "states": [12, 16], "repeats": 3,
                 "fused_repeats": 5},
        "scan_costs": {"length": 2048, "n_state": 16, "repeats": 3, "fused_repeats": 5},
        "step": {"batch": 32, "length": 1000},
        "memory": {"lengths": [1024, 4096, 16384, 32768],
                   "models": ("dynmultidep", "dynmultidep_paper")},
        # bucketed epochs measured whole, at each precision; random batches at the first
        "throughput": {"fractions": (1.0, 0.1), "precisions": ("32-true", "bf16-mixed")},
        "trained": {"epochs": 12, "repeats": 5},
        "learnability": {"plan": "quick"},
        "extraction": {"count": 4, "seconds": 60.0},
        "interview_reading": {"corpora": ("daic_woz",), "preset": "full"},
        "interview_tasks": {"plan": "full"},  # dynmultidep.bench.interview_tasks.PLANS
    },
    "quick": {
        "scan": {"lengths": [600, 2048], "states": [16], "repeats": 1, "fused_repeats": 3},
        "scan_costs": {"length": 2048, "n_state": 16, "repeats": 1, "fused_repeats": 3},
        "step": {"batch": 8, "length": 300},
        "memory": {"lengths": [1024, 4096], "models": ("dynmultidep", "dynmultidep_paper")},
        "throughput": {"fractions": (0.03, 0.02), "precisions": ("32-true", "bf16-mixed")},
        "trained": {"epochs": 2, "repeats": 2},
        "learnability": {"plan": "quick", "families": ("flat_affect", "cross_modal"),
                         "epochs": 2},
        "extraction": {"count": 2, "seconds": 15.0},
        "interview_reading": {"corpora": ("daic_woz", "edaic"), "preset": "small"},
        "interview_tasks": {"plan": "quick"},
    },
    "cuda": {
        "scan": {"lengths": [600, 2048, 4096], "states": [12, 16], "repeats": 5},
        "throughput": {"fractions": (1.0, 0.25), "precisions": ("bf16-mixed", "32-true")},
    },
    "tiny": {
        "scan": {"lengths": [64], "states": [4], "repeats": 1, "fused_repeats": 1},
        "scan_costs": {"length": 64, "n_state": 4, "repeats": 1, "fused_repeats": 1},
        "throughput": {"fractions": (1.0, 1.0), "precisions": ("32-true",), "preset": "tiny"},
    },
}  # fmt: skip
CHUNKED_VS_MAMBA_SSM = 3.0  # the chunked scan's fwd+bwd within 3x of mamba_ssm's kernel
ROOFLINE = {"fwd": 1.5, "fwd+bwd": 2.0}  # the fused scan (channels-last) against the roofline
LAYOUTS = 1.5  # the fused scan in mamba_ssm's layout against channels-last
MTEM_STEP = 1.5  # the paper recipe's step with MTEM within 1.5x of the step without it
MTEM_MEMORY = 34 / 32  # with MTEM, 32x the length within 34x the memory
# the paper recipe's steps: (result key, overrides)
PAPER_STEPS = (("step_paper", ()), ("step_paper_no_mtem", ("model.mtem=false",)))


def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle
                         if line.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "kernels": str(describe_host())}  # fmt: skip


def fmt(value, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def roofline_and_host(section: dict, results: dict) -> str:
    """The roofline rates a scan section measured, and the host it ran on."""
    fma = section["fma_lanes_per_s"]
    kernels = results.get("machine", {}).get("kernels", "not recorded")
    return (f"roofline from {min(fma) / 1e9:.0f}-{max(fma) / 1e9:.0f} G multiply-add "
            f"lanes/s; host {kernels}")  # fmt: skip


def tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every section present in ``results``."""
    out = []
    if "scan" in results:
        scan = results["scan"]
        rates = scan["rates_s_per_element"]
        title = (f"Selective scan, batch 8, d_inner 1024, fp32 (s); bound from "
                 f"{rates['exp'] * 1e12:.0f} ps per exp, {rates['muladd'] * 1e12:.0f} ps "
                 f"per multiply-add; {roofline_and_host(scan, results)}")  # fmt: skip
        header = ["N", "L", "pass", "reference", "fused", "speed-up", "fused channels-last",
                  "speed-up", "mambapy", "vs mambapy", "bound", "x bound", "roofline",
                  "x roofline"]  # fmt: skip
        rows = [[str(r["N"]), str(r["L"]), r["pass"], fmt(r["reference_s"], ".2f"),
                 fmt(r["fused_s"]), f"{r['speedup']:.1f}x", fmt(r["fused_channels_last_s"]),
                 f"{r['speedup_channels_last']:.1f}x", fmt(r["mambapy_s"], ".2f"),
                 "—" if r["speedup_vs_mambapy"] is None else f"{r['speedup_vs_mambapy']:.0f}x",
                 fmt(r["bound_s"]), f"{r['times_bound']:.1f}", fmt(r["roofline_s"]),
                 f"{r['times_roofline']:.1f}"]
                for r in scan["rows"]]  # fmt: skip
        out.append((title, header, rows))
    if "scan_costs" in results:
        costs = results["scan_costs"]
        title = (f"Selective scan costs, batch 8, d_inner 1024, fp32 (s): transposition of "
                 f"mamba_ssm's layout, prelude (softplus, gate), the backward's gradients of "
                 f"B and C (per-lane partial tiles and their sums), and the rest; "
                 f"{roofline_and_host(costs, results)}")  # fmt: skip
        header = ["N", "L", "pass", "channels-last", "mamba_ssm layout", "layout ratio",
                  "transposition", "prelude", "B, C gradients", "rest (no softplus, gate)",
                  "roofline", "rest x roofline"]  # fmt: skip
        rows = [[str(r["N"]), str(r["L"]), r["pass"], fmt(r["channels-last_s"]),
                 fmt(r["mamba_ssm layout_s"]), f"{r['layout_ratio']:.2f}",
                 fmt(r["transposition_s"]), fmt(r["prelude_s"]), fmt(r.get("bc_gradients_s")),
                 fmt(r["channels-last, no softplus or gate_s"]), fmt(r["roofline_s"]),
                 f"{r['channels-last, no softplus or gate_s'] / r['roofline_s']:.2f}"]
                for r in costs["rows"]]  # fmt: skip
        out.append((title, header, rows))
    if "scan_cuda" in results:
        scan = results["scan_cuda"]
        header = ["N", "L", "pass", "reference (s)", "chunked (s)", "speed-up",
                  "mamba_ssm (s)", "speed-up", "chunked / mamba_ssm"]  # fmt: skip
        rows = [[str(r["N"]), str(r["L"]), r["pass"], fmt(r["reference_s"], ".4f"),
                 fmt(r["chunked_s"], ".4f"), fmt(r["chunked_speedup"], ".1f"),
                 fmt(r["mamba_ssm_s"], ".4f"), fmt(r["speedup"], ".1f"),
                 fmt(r["mamba_ssm_s"] and r["chunked_s"] / r["mamba_ssm_s"], ".2f")]
                for r in scan["rows"]]  # fmt: skip
        out.append((f"Selective scan on {scan['device']}, batch 8, d_inner 1024", header, rows))
    if "step" in results:
        step = results["step"]
        shape = f"batch {step['batch']} x {step['length']} steps"
        runs = [step] + [results[k] for k in ("step_pytorch", "step_bf16") if k in results]
        profiled = [r for r in runs if r["paths"] == "fused"]  # fp32, then bf16 if run
        header = ["op group"] + [f"{r['precision']}: {c}" for r in profiled
                                 for c in ("seconds (self)", "share")]  # fmt: skip
        rows = [[g["group"]] + [v for r in profiled for v in
                                (f"{r['groups'][i]['seconds']:.2f}",
                                 f"{r['groups'][i]['share']:.0%}")]
                for i, g in enumerate(step["groups"])]  # fmt: skip
        out.append((f"One training step of the D-Vlog recipe model, {shape}: profile",
                    header, rows))  # fmt: skip
        header = ["paths", "precision", "training step (s)", "profiled step (s)",
                  "matrix products + scan (s)", "ratio (profiled)", "inference (s)"]  # fmt: skip
        rows = [[r["paths"], r["precision"], f"{r['step_s']:.2f}", f"{r['profiled_s']:.2f}",
                 f"{r['matmul_plus_scan_s']:.2f}", fmt(r["step_over_matmul_plus_scan"], ".2f"),
                 f"{r['inference_s']:.2f}"] for r in runs]  # fmt: skip
        out.append((f"Training step against its defining work, {shape}", header, rows))
        papers = [results[k] for k, _ in PAPER_STEPS if k in results]
        if papers:
            header = ["model", "training step (s)", "step GFLOPs", "inference (s)"]
            rows = [[r["model"], f"{r['step_s']:.2f}", f"{r['step_gflops']:.1f}",
                     f"{r['inference_s']:.2f}"] for r in [step, *papers]]  # fmt: skip
            out.append((f"The paper recipe's training step (fp32, fused paths), {shape}",
                        header, rows))  # fmt: skip
    if "memory" in results:
        header = ["model", "L", "pass", "peak extra memory (MiB)", "MiB per 1k steps", "time (s)"]
        rows = [[r.get("model", "dynmultidep"), str(r["L"]), r["pass"]]
                + (["—", "—", r.get("error", "failed")] if "error" in r else
                   [f"{r['peak_bytes'] / 2**20:.0f}",
                    f"{r['peak_bytes'] / 2**20 / (r['L'] / 1024):.0f}", f"{r['seconds']:.2f}"])
                for r in results["memory"]]  # fmt: skip
        out.append(("Recipe models (D-Vlog, paper with soft gates), batch 1: memory against "
                    "length", header, rows))  # fmt: skip
    if "throughput" in results:
        header = ["batches", "precision", "items / epoch", "batches / epoch", "timed share",
                  "epoch (s)", "items / s", "padded-step efficiency",
                  "peak memory (MiB)"]  # fmt: skip
        rows = [[r["batches"], r["precision"], str(r["epoch_items"]), str(r["epoch_batches"]),
                 f"{r['timed_fraction']:.0%}", f"{r['epoch_seconds']:.1f}",
                 f"{r['items_per_s']:.2f}", f"{r['padded_step_efficiency']:.1%}",
                 fmt(r.get("peak_memory_mib"), ".0f")]
                for r in results["throughput"]]  # fmt: skip
        first = results["throughput"][0]
        out.append((f"One training epoch, D-Vlog recipe, synthetic D-Vlog ({first['preset']}) "
                    f"on {first.get('device', 'cpu')}", header, rows))  # fmt: skip
    if "trained" in results:
        trained = results["trained"]
        header = ["model", "test accuracy", "GFLOPs (test fold)", "inference (s)", "routed"]
        rows = [[r["model"], f"{r['accuracy']:.3f}", f"{r['flops'] / 1e9:.2f}",
                 f"{r['seconds']:.3f}",
                 ", ".join(f"{k} {v:.0%}" for k, v in r["routed"].items())]
                for r in trained["dynamic"]]  # fmt: skip
        out.append((f"Dynamic inference (trained {trained['epochs']} epochs)", header, rows))
        header = ["model", "both modalities", "video blanked", "audio blanked"]
        rows = [[r["model"], f"{r['accuracy']:.3f}", f"{r['video_blanked']:.3f}",
                 f"{r['audio_blanked']:.3f}"] for r in trained["missing_modality"]]  # fmt: skip
        out.append(("Missing modality: test accuracy", header, rows))
    if "learnability" in results:
        for title, header, rows in learnability_tables(results["learnability"]["summary"], []):
            out.append((f"Learnability (quick plan): {title}", header, rows))
    if "extraction" in results:
        extraction = results["extraction"]
        header = ["stage of one vlog", "seconds", "x real time", "faces found"]
        rows = [[r["stage"], f"{r['seconds']:.2f}", f"{r['x_realtime']:.1f}",
                 fmt(r.get("found"), ".0%")] for r in extraction["stages"]]  # fmt: skip
        title = (f"Feature extraction: {extraction['video']}, "
                 f"{extraction['seconds_per_vlog']:.0f} s vlogs")  # fmt: skip
        out.append((title, header, rows))
        header = ["run", "videos", "video (s)", "wall (s)", "x real time"]
        rows = [[r["run"], str(r["videos"]), f"{r['media_s']:.0f}", f"{r['wall_s']:.1f}",
                 f"{r['x_realtime']:.1f}"] for r in extraction["runs"]]  # fmt: skip
        out.append(("Feature extraction at the defaults (eGeMAPS, landmarks at 1 frame/s)",
                    header, rows))  # fmt: skip
    if "interview_reading" in results:
        header = ["corpus", "twin", "sessions", "hours", "release (GB)", "feature sets",
                  "read cold (s)", "cached (s)", "largest file", "kernel (s)",
                  "reference (s)"]  # fmt: skip
        rows = [[r["corpus"], r["preset"], str(r["sessions"]), f"{r['hours']:.1f}",
                 f"{r['release_gb']:.2f}", " + ".join(r["sets"]["audio"] + r["sets"]["visual"]),
                 f"{r['cold_s']:.1f}", f"{r['cached_s']:.3f}",
                 f"{r['parsed_file']} ({r['parsed_mb']:.0f} MB)", f"{r['kernel_s']:.2f}",
                 f"{r['reference_s']:.2f}"] for r in results["interview_reading"]]  # fmt: skip
        workers = results["interview_reading"][0]["workers"]
        out.append((f"Reading an interview twin into its prepared corpus ({workers} processes)",
                    header, rows))  # fmt: skip
    if "interview_tasks" in results:
        out += interview_tasks_tables(results["interview_tasks"])
    if results.get("targets"):
        header = ["target", "measured", "met"]
        rows = [[t["target"], t["measured"], "yes" if t["met"] else "no"]
                for t in results["targets"]]  # fmt: skip
        out.append(("Targets", header, rows))
    return out


def target(text: str, measured: str, met: bool) -> dict:
    return {"target": text, "measured": measured, "met": bool(met)}


def targets(results: dict) -> list[dict]:
    """The project's benchmark targets (BENCHMARKS.md), against what this run measured."""
    found = []
    for r in results.get("scan", {}).get("rows", []):
        if r["pass"] == "fwd+bwd" and r["L"] == 2048:
            best = max(r["speedup"], r["speedup_channels_last"])
            shape = f"scan fwd+bwd, L 2048, N {r['N']}"
            found.append(target(f"{shape}: >= 30x the reference", f"{best:.1f}x", best >= 30))
            times = r["times_bound"]
            found.append(target(f"{shape}: within 3x of the bound", f"{times:.1f}x", times <= 3))
        if r["L"] == 2048 and r["N"] == 16:
            times, limit = r["times_roofline"], ROOFLINE[r["pass"]]
            found.append(target(f"scan {r['pass']}, L 2048, N 16: within {limit}x of the FMA "
                                "roofline", f"{times:.2f}x", times <= limit))  # fmt: skip
            layouts = r["fused_s"] / r["fused_channels_last_s"]
            found.append(target(f"scan {r['pass']}, L 2048, N 16: mamba_ssm's layout within "
                                f"{LAYOUTS}x of channels-last", f"{layouts:.2f}x",
                                layouts <= LAYOUTS))  # fmt: skip
    step = results.get("step")
    if step and step["step_over_matmul_plus_scan"] is not None:
        ratio = step["step_over_matmul_plus_scan"]
        found.append(target("training step <= 1.5x its matrix products + scan",
                            f"{ratio:.2f}x", ratio <= 1.5))  # fmt: skip
    plain = results.get("step_pytorch")
    for fast in (step, results.get("step_bf16")):
        if fast and plain:
            faster = plain["inference_s"] / fast["inference_s"]
            how = "" if fast["precision"] == "32" else " under bf16 autocast"
            found.append(target(f"inference{how} >= 2x faster than fp32 on PyTorch's paths "
                                "(same run)", f"{faster:.2f}x", faster >= 2))  # fmt: skip
    for key, _ in PAPER_STEPS[:1]:
        with_mtem, without = results.get(key), results.get(PAPER_STEPS[1][0])
        if with_mtem and without:
            ratio = with_mtem["step_s"] / without["step_s"]
            found.append(target(f"paper recipe step with MTEM <= {MTEM_STEP}x without it",
                                f"{ratio:.2f}x", ratio <= MTEM_STEP))  # fmt: skip
    memory = [r for r in results.get("memory", []) if "error" not in r]
    for model in dict.fromkeys(r.get("model", "dynmultidep") for r in memory):
        # the recipe: linear within 25%; with MTEM (the paper's): 32x L within 34x memory
        limit = MTEM_MEMORY if model == "dynmultidep_paper" else 1.25
        for pass_name in ("fwd", "fwd+bwd"):
            rows = [r for r in memory if r.get("model", "dynmultidep") == model]
            rows = sorted((r for r in rows if r["pass"] == pass_name), key=lambda r: r["L"])
            if len(rows) >= 2:
                longer = rows[-1]["L"] / rows[0]["L"]
                more = rows[-1]["peak_bytes"] / rows[0]["peak_bytes"]
                measured = f"{longer:.0f}x L -> {more:.1f}x memory"
                found.append(target(f"{model} memory ({pass_name}): {longer:.0f}x L within "
                                    f"{limit * longer:.0f}x memory", measured,
                                    more / longer <= limit))  # fmt: skip
    for r in results.get("scan_cuda", {}).get("rows", []):
        if r["pass"] == "fwd+bwd" and r["mamba_ssm_s"] is not None:
            times = r["chunked_s"] / r["mamba_ssm_s"]
            found.append(target(f"chunked scan fwd+bwd, L {r['L']}, N {r['N']}: within "
                                f"{CHUNKED_VS_MAMBA_SSM:.0f}x of mamba_ssm", f"{times:.2f}x",
                                times <= CHUNKED_VS_MAMBA_SSM))  # fmt: skip
    for r in results.get("throughput", []):
        device = r.get("device", "cpu")
        if r["batches"] != "bucketed" or r["preset"] != "full":
            continue
        if device == "cuda" and r["precision"] != "bf16-mixed":
            continue
        limit, seconds = EPOCH_TARGET_S[device], r["epoch_seconds"]
        found.append(target(f"training epoch (bucketed, {r['precision']}, {device}) <= "
                            f"{limit:.0f} s", f"{seconds:.1f} s", seconds <= limit))  # fmt: skip
    dynamic = {r["model"]: r for r in results.get("trained", {}).get("dynamic", [])}
    for everything, skipping, _ in DYNAMIC:
        if everything not in dynamic or skipping not in dynamic:
            continue
        both, raw = dynamic[everything], dynamic[skipping]
        saved = 1 - raw["flops"] / both["flops"]
        change = raw["accuracy"] - both["accuracy"]
        found.append(target(f"dynamic inference ({skipping} against {everything}): >= 35% "
                            "less compute", f"{saved:.0%} fewer FLOPs", saved >= 0.35))  # fmt: skip
        found.append(target(f"dynamic inference ({skipping} against {everything}): <= 1 "
                            "point of accuracy lost", f"{100 * change:+.1f} points",
                            change >= -0.01))  # fmt: skip
    for r in results.get("interview_reading", []):
        if r["preset"] == "full" and r["corpus"] == "daic_woz":
            found.append(target(f"full-size DAIC-WOZ twin read cold <= {READ_TARGET_S:.0f} s",
                                f"{r['cold_s']:.1f} s", r["cold_s"] <= READ_TARGET_S))  # fmt: skip
    found += results.get("interview_tasks", {}).get("targets", [])
    for r in results.get("extraction", {}).get("runs", []):
        found.append(target(f"extraction, {r['run']}: >= 10x real time",
                            f"{r['x_realtime']:.1f}x", r["x_realtime"] >= 10))  # fmt: skip
    return found


def markdown(results: dict) -> str:
    lines = [f"Machine: {results['machine']}", f"Command: `{results['command']}`", ""]
    lines += markdown_tables(tables(results))
    return "\n".join(lines)


def bench_learnability(plan: str, families=None, epochs=None) -> dict:
    """The learnability benchmark's ``plan`` (optionally fewer families or epochs)."""
    chosen = LEARNABILITY_PLANS[plan]
    if families is not None:
        chosen = replace(chosen, families=tuple(families))
    if epochs is not None:
        chosen = replace(chosen, epochs=epochs)
    with tempfile.TemporaryDirectory() as work_dir:
        results = run_plan(plan_jobs(chosen), work_dir, CONF_DIR, workers=2)
    return {"plan": plan, "summary": summarize(results), "results": results}


def run(sections: list[str], plan: dict, device: str, corpus: str | None = None,
        progress: Progress | None = None) -> dict:  # fmt: skip
    """Every section of ``sections`` that runs on ``device``, reporting each job to
    ``progress`` (default: lines on stderr)."""
    results: dict = {"machine": machine(), "command": " ".join(["python", *sys.argv])}
    started = time.perf_counter()
    runs_here = [
        s
        for s in SECTIONS  # in run order
        if s in sections and (device == "cpu" or s in ("scan", "throughput"))
    ]
    progress = progress or Progress(runs_here)
    if "scan" in runs_here:
        scan = plan["scan"]
        shape = f"L {min(scan['lengths'])}-{max(scan['lengths'])}, N {scan['states']}"
        with progress.job("scan", f"selective scan, {shape}"):
            if device == "cuda":
                results["scan_cuda"] = bench_scan_cuda(scan["lengths"], scan["states"],
                                                       scan["repeats"])  # fmt: skip
            else:
                results["scan"] = bench_scan(**scan, on_row=progress.note)
        if device == "cpu" and "scan_costs" in plan:
            costs = plan["scan_costs"]
            with progress.job("scan", f"scan costs, L {costs['length']}, N {costs['n_state']}"):
                results["scan_costs"] = scan_costs(**costs)
    if "step" in runs_here:
        steps = [
            ("step", "recipe model, fused paths, fp32", {}),
            ("step_pytorch", "recipe model, PyTorch's paths, fp32", {"paths": "pytorch"}),
            ("step_bf16", "recipe model, fused paths, bf16", {"precision": "bf16"}),
        ]
        steps += [(key, f"paper recipe {' '.join(overrides) or '(MTEM)'}",
                   {"experiment": "dvlog_dynmultidep_paper", "overrides": overrides})
                  for key, overrides in PAPER_STEPS]  # fmt: skip
        for key, name, options in steps:
            with progress.job("step", name):
                results[key] = bench_step(CONF_DIR, **plan["step"], **options)
    if "memory" in runs_here:
        with progress.job("memory", "peak memory against length"):
            results["memory"] = bench_memory(CONF_DIR, **plan["memory"], on_row=progress.note)
    if "throughput" in runs_here:
        throughput = plan["throughput"]
        with progress.job("throughput", "training epochs, bucketed and random batches"):
            results["throughput"] = bench_throughput(
                CONF_DIR, throughput["fractions"], device=device,
                preset=throughput.get("preset", "full"), precisions=throughput["precisions"],
                corpus=corpus,
            )  # fmt: skip
    if "trained" in runs_here:
        with progress.job("trained", "train, then dynamic inference and missing modalities"):
            with tempfile.TemporaryDirectory() as work_dir:
                results["trained"] = bench_trained(CONF_DIR, Path(work_dir), **plan["trained"])
    if "learnability" in runs_here:
        with progress.job("learnability", f"{plan['learnability']['plan']} plan"):
            results["learnability"] = bench_learnability(**plan["learnability"])
    if "extraction" in runs_here:
        with progress.job("extraction", "feature extraction from videos"):
            results["extraction"] = bench_extraction(**plan["extraction"])
    if "interview_reading" in runs_here:
        reading = plan["interview_reading"]
        with progress.job("interview_reading", f"interview twins ({reading['preset']}), read cold"):
            results["interview_reading"] = bench_interview_reading(CONF_DIR, **reading)
    if "interview_tasks" in runs_here:
        tasks = plan["interview_tasks"]
        with progress.job("interview_tasks", f"both tasks, interview twins ({tasks['plan']})"):
            with tempfile.TemporaryDirectory() as work_dir:
                results["interview_tasks"] = bench_interview_tasks(
                    CONF_DIR, work_dir, **tasks, workers=2, on_row=progress.note
                )
    results["targets"] = targets(results)
    results["seconds"] = time.perf_counter() - started
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a subset, about 2 minutes")
    parser.add_argument(
        "--plan",
        choices=sorted(PLANS),
        default=None,
        help="full (default), quick, cuda (default with --device cuda), tiny",
    )
    parser.add_argument("--corpus", default=None,
                        help="an existing synthetic D-Vlog of the plan's preset for the "
                        "throughput section (default: generated under data/)")  # fmt: skip
    parser.add_argument("--sections", default=None,
                        help=f"comma-separated, of {', '.join(SECTIONS)} "
                        "(default: the plan's)")  # fmt: skip
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    args = parser.parse_args()
    sections = [s for s in (args.sections or ",".join(SECTIONS)).split(",") if s]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    name = args.plan or ("quick" if args.quick else "cuda" if args.device == "cuda" else "full")
    missing = [s for s in sections if s not in PLANS[name]]
    if args.sections is None:  # every section the plan has
        sections = [s for s in sections if s in PLANS[name]]
    elif missing:
        parser.error(f"plan {name} has no {', '.join(missing)} section")
    results = run(sections, PLANS[name], args.device, args.corpus)
    console = Console(width=160)
    print_tables(console, tables(results))
    console.print(f"{results['seconds']:.0f} s on {results['machine']}")
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2) + "\n")
    if args.markdown:
        write_text_atomic(args.markdown, markdown(results))


if __name__ == "__main__":
    main()
