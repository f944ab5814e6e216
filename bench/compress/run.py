"""`python -m bench.compress`: lmaas compress beside torch's dynamic quantization and the seed's
three flawed algorithms, on digits MLPs trained by `lmaas train`.

For every model (a small 64-256-128-10 MLP, the one the worker tests use, and a wide 64-1024-1024-10
MLP on which integer kernels have something to do) and every scenario the table gives the size
ratio (output weights file / input weights file), the held-out accuracy change in points, and the
p50 latency speedup at batch 1 and batch 32 (one thread). lmaas rows come from the CompressJob
worker's own report (each run measures its input and output in the same process); baseline rows
are measured here with the same functions, input and output one after the other. A last table
repeats distillation over several seeds: the distilled student against the same student trained
without a teacher.

Prints the tables and writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"

MODELS = {
    "mlp-256x128": {"hidden": [256, 128], "epochs": 40, "student": [32]},
    "mlp-1024x1024": {"hidden": [1024, 1024], "epochs": 40, "student": [128]},
}
PRUNE = {"sparsity": 0.5, "fineTuneEpochs": 3, "learningRate": 0.0005}
STRUCTURED = {**PRUNE, "structure": "structured", "learningRate": 0.001}


def distill_step(student: list[int]) -> dict[str, Any]:
    return {"student": {"builtin": "mlp", "args": {"hidden": student}}, "temperature": 8, "alpha": 0.9,
            "epochs": 60, "learningRate": 0.05, "batchSize": 64}


def scenarios(student: list[int]) -> dict[str, list[dict[str, Any]]]:
    return {
        "quantize int8": [{"quantize": {"scheme": "int8"}}],
        "quantize int4 (group 32)": [{"quantize": {"scheme": "int4", "groupSize": 32}}],
        "prune 50% unstructured": [{"prune": PRUNE}],
        "prune 50% structured": [{"prune": STRUCTURED}],
        "prune 50% -> int8": [{"prune": PRUNE}, {"quantize": {"scheme": "int8"}}],
        f"distill mlp{student} -> int8": [{"distill": distill_step(student)}, {"quantize": {"scheme": "int8"}}],
    }


# --- training the inputs --------------------------------------------------------------------

def train_teacher(name: str, hidden: list[int], epochs: int, workdir: Path) -> Path:
    from lmaas_worker.train import run_training

    resource = {
        "apiVersion": "lmaas.io/v1alpha1", "kind": "TrainJob", "metadata": {"name": name, "namespace": "bench"},
        "spec": {"model": {"builtin": "mlp", "args": {"hidden": hidden, "dropout": 0.3}},
                 "dataset": {"builtin": "digits"},
                 "hyperparameters": {"epochs": epochs, "batchSize": 64, "learningRate": 0.003, "weightDecay": 0.05,
                                     "logEverySteps": 100000},
                 "checkpoint": {"everySteps": 1000000, "keep": 1}},
    }
    config = workdir / f"{name}.json"
    config.write_text(json.dumps(resource))
    with contextlib.redirect_stdout(io.StringIO()):
        if run_training(config, workdir / name) != 0:
            raise RuntimeError(f"training {name} failed")
    return workdir / name / "artifact"


# --- lmaas ----------------------------------------------------------------------------------

def run_lmaas(teacher: Path, steps: list[dict[str, Any]], workdir: Path, max_drop: float) -> dict[str, Any]:
    from lmaas_worker.compress import run_compression

    workdir.mkdir(parents=True)
    config = workdir / "compressjob.json"
    config.write_text(json.dumps({"apiVersion": "lmaas.io/v1alpha1", "kind": "CompressJob",
                                  "metadata": {"name": workdir.name, "namespace": "bench"},
                                  "spec": {"model": {"uri": "pvc://bench/input"}, "steps": steps,
                                           "maxAccuracyDrop": max_drop}}))
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_compression(config, teacher, workdir / "out")
    report = json.loads((workdir / "out" / "report.json").read_text())
    s = report["summary"]
    return {"exit": code, "sizeRatio": s["sizeRatio"], "accuracyDelta": s["accuracyDelta"],
            "speedupBatch1": s["latencySpeedup"], "speedupBatch32": s["latencySpeedupBatch32"],
            "input": s["steps"][0], "output": s["steps"][-1], "distillation": report["distillation"]}


# --- baselines, measured here -------------------------------------------------------------

class Bench:
    def __init__(self, teacher: Path, settings):
        from lmaas_operator.api.spec import DatasetDefinition
        from lmaas_worker.compress import load_artifact
        from lmaas_worker.data import build_datasets
        from lmaas_worker.train.tasks import TASKS

        self.teacher_dir = teacher
        self.module, self.card = load_artifact(teacher)
        self.data = build_datasets(DatasetDefinition.parse({"builtin": "digits"}), seed=0)
        self.task = TASKS["classification"]
        self.settings = settings

    def fresh(self) -> torch.nn.Module:
        module = copy.deepcopy(self.module)
        module.requires_grad_(True)
        return module

    def figures(self, module: torch.nn.Module) -> dict[str, float]:
        from lmaas_worker.compress.measure import evaluate, example_batch, latency_p50_ms

        return {"accuracy": evaluate(module, self.data.val, self.task)["accuracy"],
                **{f"latencyMsBatch{b}": latency_p50_ms(module, example_batch(self.data.val, b), self.settings)
                   for b in (1, 32)}}

    def row(self, output: torch.nn.Module, size_ratio: float, note: str) -> dict[str, Any]:
        before, after = self.figures(self.module), self.figures(output)
        return {"sizeRatio": round(size_ratio, 4), "accuracyDelta": round(after["accuracy"] - before["accuracy"], 3),
                "speedupBatch1": round(before["latencyMsBatch1"] / after["latencyMsBatch1"], 3),
                "speedupBatch32": round(before["latencyMsBatch32"] / after["latencyMsBatch32"], 3),
                "input": before, "output": after, "note": note}

    def safetensors_ratio(self, module: torch.nn.Module) -> float:
        from safetensors.torch import save_file

        with tempfile.TemporaryDirectory() as tmp:
            save_file({k: v.contiguous() for k, v in module.state_dict().items()}, Path(tmp) / "m.safetensors")
            return (Path(tmp) / "m.safetensors").stat().st_size / (self.teacher_dir / "model.safetensors").stat().st_size

    def torch_dynamic(self) -> dict[str, Any]:
        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantized = quantize_dynamic(copy.deepcopy(self.module), {torch.nn.Linear}, dtype=torch.qint8)

        def pickled(module: torch.nn.Module) -> int:  # its only format: torch.save, a pickle
            buffer = io.BytesIO()
            torch.save(module.state_dict(), buffer)
            return len(buffer.getvalue())

        return self.row(quantized, pickled(quantized) / pickled(self.module),
                        "torch.ao.quantization.quantize_dynamic, per-tensor qint8; size via torch.save (pickle)")

    def seed_prune(self) -> dict[str, Any]:
        from .seed_flawed import fine_tune_with_masks, prune_signed_threshold

        module = self.fresh()
        masks = prune_signed_threshold(module, PRUNE["sparsity"])
        kept = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
        negatives_kept = sum(int((layer.weight < 0).sum()) for _, layer in _layers(module))
        fine_tune_with_masks(module, masks, self.data.train, self.task, PRUNE["fineTuneEpochs"],
                             PRUNE["learningRate"], seed=0)
        return self.row(module.eval(), self.safetensors_ratio(module),
                        f"keeps w > threshold: {100 * (1 - kept):.0f}% pruned, {negatives_kept} negative weights "
                        f"left; stored dense")

    def seed_quantize(self) -> dict[str, Any]:
        from .seed_flawed import round_in_float

        module = self.fresh()
        round_in_float(module)
        return self.row(module.eval(), self.safetensors_ratio(module), "rounded to 255 levels, stored as float32")

    def seed_distill(self, epochs: int) -> dict[str, Any]:
        from .seed_flawed import copy_trained_teacher

        student = copy_trained_teacher(self.fresh(), self.data.train, self.task, epochs, 0.001, seed=0)
        return self.row(student, self.safetensors_ratio(student),
                        "teacher trained further and copied: the 'student' is the teacher's architecture")


def _layers(module):
    from lmaas_worker.compress.layers import weight_layers

    return weight_layers(module)


def distillation_over_seeds(bench: Bench, student: list[int], seeds: int) -> dict[str, Any]:
    from lmaas_operator.api.spec import DistillStep
    from lmaas_worker.compress.distill import distill
    from lmaas_worker.compress.measure import evaluate

    step = DistillStep.parse(distill_step(student))
    pairs = []
    for seed in range(seeds):
        result = distill(bench.module, step, bench.card, bench.data.train, bench.task, seed)
        pairs.append((evaluate(result.student, bench.data.val, bench.task)["accuracy"],
                      evaluate(result.alone, bench.data.val, bench.task)["accuracy"]))
    gaps = [a - b for a, b in pairs]
    return {"student": student, "seeds": seeds, "distilled": [round(a, 2) for a, _ in pairs],
            "alone": [round(b, 2) for _, b in pairs], "meanGap": round(statistics.mean(gaps), 3),
            "minGap": round(min(gaps), 3), "wins": sum(g > 0 for g in gaps), "ties": sum(g == 0 for g in gaps)}


# --- output -----------------------------------------------------------------------------------

def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | scenario | size ratio | accuracy change (points) | speedup batch 1 | speedup batch 32 |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['scenario']} | {r['sizeRatio']:.3f} | {r['accuracyDelta']:+.2f} "
                     f"| {r['speedupBatch1']:.2f}x | {r['speedupBatch32']:.2f}x |")
    return "\n".join(lines)


def kd_table(results: list[dict[str, Any]]) -> str:
    lines = ["| model | student | seeds | distilled (mean) | alone (mean) | mean gap | min gap | distilled better |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['model']} | mlp{r['student']} | {r['seeds']} | {statistics.mean(r['distilled']):.2f} "
                     f"| {statistics.mean(r['alone']):.2f} | {r['meanGap']:+.2f} | {r['minGap']:+.2f} "
                     f"| {r['wins']}/{r['seeds']} ({r['ties']} tied) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compress", description=__doc__.splitlines()[0])
    parser.add_argument("--latency-seconds", type=float, default=1.0, help="p50 budget per model and batch size")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads while timing")
    parser.add_argument("--seeds", type=int, default=8, help="distillation repeats (0 to skip)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    os.environ.update(LMAAS_COMPRESS_LATENCY_SECONDS=str(args.latency_seconds), LMAAS_COMPRESS_THREADS=str(args.threads),
                      LMAAS_LOG_LEVEL="WARNING")
    from lmaas_worker.compress.int8_backend import default_kernel
    from lmaas_worker.compress.measure import LatencySettings

    settings = LatencySettings(threads=args.threads, budget_seconds=args.latency_seconds)
    rows: list[dict[str, Any]] = []
    kd: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        workdir = Path(tmp)
        os.environ["LMAAS_TERMINATION_LOG"] = str(workdir / "termination-log")
        for model in args.models:
            spec = MODELS[model]
            print(f"training {model} ...", file=sys.stderr, flush=True)
            teacher = train_teacher(model, spec["hidden"], spec["epochs"], workdir)
            for scenario, steps in scenarios(spec["student"]).items():
                print(f"  lmaas: {scenario}", file=sys.stderr, flush=True)
                max_drop = 100.0  # measure, do not gate: the table shows the figures
                result = run_lmaas(teacher, steps, workdir / f"{model}-{len(rows)}", max_drop)
                rows.append({"model": model, "scenario": f"lmaas {scenario}", **result})
            bench = Bench(teacher, settings)
            print("  baselines", file=sys.stderr, flush=True)
            rows.append({"model": model, "scenario": "torch quantize_dynamic int8", **bench.torch_dynamic()})
            rows.append({"model": model, "scenario": "seed prune (keeps w > threshold)", **bench.seed_prune()})
            rows.append({"model": model, "scenario": "seed quantize (rounds floats)", **bench.seed_quantize()})
            rows.append({"model": model, "scenario": "seed distill (copies the teacher)",
                         **bench.seed_distill(distill_step(spec["student"])["epochs"])})
            if args.seeds and model == "mlp-256x128":
                print(f"  distillation over {args.seeds} seeds", file=sys.stderr, flush=True)
                kd.append({"model": model, **distillation_over_seeds(bench, spec["student"], args.seeds)})
    text = table(rows) + ("\n\n" + kd_table(kd) if kd else "")
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"compress-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({
        "command": "python -m bench.compress " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {"threads": args.threads, "latencySeconds": args.latency_seconds, "int8Kernel": default_kernel(),
                     "torch": torch.__version__, "cpus": os.cpu_count()},
        "wallSeconds": round(time.perf_counter() - started, 1), "rows": rows, "distillation": kd,
    }, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(REPO)}")
    return 0
