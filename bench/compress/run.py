"""`python -m bench.compress`: lmaas compress beside torch's dynamic quantization and the seed's
three flawed algorithms, on digits MLPs trained by `lmaas train`.

For every model (a small 64-256-128-10 MLP, the one the worker tests use, and a wide 64-1024-1024-10
MLP on which integer kernels have something to do) and every scenario the table gives the size
ratio (output weights file / input weights file), the accuracy change in points on a test split,
and the p50 latency speedup at batch 1 and batch 32 (one thread): the median over alternating
rounds of input and output, with its range. lmaas rows come from the CompressJob worker's own
report; baseline rows are measured here with the same functions.

Digits is split three ways (`test_fraction`): the teachers train on the training split, the
distillation settings (temperature, alpha, epochs) are chosen on the validation split, and every
figure in the tables is measured on the test split, which neither saw. A last table repeats
distillation over several seeds with the chosen settings: the distilled student against the same
student trained without a teacher. A memory table gives the resident memory a served model adds,
float32 against int8, each loaded in a fresh process (`served_memory.py`).

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
import subprocess
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
TEST_FRACTION = 0.2
TRAINING_DATA = {"builtin": "digits", "args": {"test_fraction": TEST_FRACTION}}
"""Training split and, as the held-out split, the validation samples: what teachers train on and tuning sees."""
TEST_DATA = {"builtin": "digits", "args": {"test_fraction": TEST_FRACTION, "held_out": "test"}}
"""The same training split, with the test samples as the held-out split: what every figure is measured on."""
DISTILL_GRID = {"temperature": (2, 4, 8), "alpha": (0.5, 0.9), "epochs": (30, 60)}


def distill_step(student: list[int], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "student": {"builtin": "mlp", "args": {"hidden": student}},
        **settings,
        "learningRate": 0.05,
        "batchSize": 64,
    }


def scenarios(student: list[int], distill_settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        "quantize int8": [{"quantize": {"scheme": "int8"}}],
        "quantize int4 (group 32)": [{"quantize": {"scheme": "int4", "groupSize": 32}}],
        "prune 50% unstructured": [{"prune": PRUNE}],
        "prune 50% structured": [{"prune": STRUCTURED}],
        "prune 50% -> int8": [{"prune": PRUNE}, {"quantize": {"scheme": "int8"}}],
        f"distill mlp{student} -> int8": [
            {"distill": distill_step(student, distill_settings)},
            {"quantize": {"scheme": "int8"}},
        ],
    }


# --- training the inputs --------------------------------------------------------------------


def train_teacher(name: str, hidden: list[int], epochs: int, workdir: Path) -> Path:
    from lmaas_worker.train import run_training

    resource = {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": {
            "model": {"builtin": "mlp", "args": {"hidden": hidden, "dropout": 0.3}},
            "dataset": TRAINING_DATA,
            "hyperparameters": {
                "epochs": epochs,
                "batchSize": 64,
                "learningRate": 0.003,
                "weightDecay": 0.05,
                "logEverySteps": 100000,
            },
            "checkpoint": {"everySteps": 1000000, "keep": 1},
        },
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
    from lmaas_worker.compress.report import BATCH_SUFFIX

    workdir.mkdir(parents=True)
    config = workdir / "compressjob.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "lmaas.io/v1alpha1",
                "kind": "CompressJob",
                "metadata": {"name": workdir.name, "namespace": "bench"},
                "spec": {
                    "model": {"uri": "pvc://bench/input"},
                    "steps": steps,
                    "dataset": TEST_DATA,
                    "maxAccuracyDrop": max_drop,
                },
            }
        )
    )
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_compression(config, teacher, workdir / "out")
    report = json.loads((workdir / "out" / "report.json").read_text())
    s = report["summary"]
    return {
        "exit": code,
        "sizeRatio": s["sizeRatio"],
        "accuracyDelta": s["accuracyDelta"],
        **{
            f"speedupBatch{batch}": {
                "median": s[f"latencySpeedup{suffix}"],
                "range": s[f"latencySpeedup{suffix}Range"],
                "verdict": s[f"latencyVerdict{suffix}"],
            }
            for batch, suffix in BATCH_SUFFIX.items()
        },
        "input": s["steps"][0],
        "output": s["steps"][-1],
        "distillation": report["distillation"],
        "artifact": str(workdir / "out" / "artifact"),
    }


# --- baselines, measured here -------------------------------------------------------------


class Bench:
    def __init__(self, teacher: Path, settings):
        from lmaas_api.spec import DatasetDefinition
        from lmaas_worker.artifacts import load
        from lmaas_worker.data import build_datasets
        from lmaas_worker.train.tasks import TASKS

        self.teacher_dir = teacher
        self.module, self.card = load(teacher)
        self.tuning = build_datasets(DatasetDefinition.parse(TRAINING_DATA), seed=0)
        self.data = build_datasets(DatasetDefinition.parse(TEST_DATA), seed=0)
        self.task = TASKS["classification"]
        self.settings = settings

    def fresh(self) -> torch.nn.Module:
        module = copy.deepcopy(self.module)
        module.requires_grad_(True)
        return module

    def row(self, output: torch.nn.Module, size_ratio: float, note: str) -> dict[str, Any]:
        """The figures of a baseline's output against the teacher, as the worker's report gives them."""
        from lmaas_worker.compress.measure import evaluate, interleaved_latencies
        from lmaas_worker.compress.report import speedup

        before, after = (evaluate(m, self.data.val, self.task)["accuracy"] for m in (self.module, output))
        latencies = interleaved_latencies(self.module, output, self.data.val, self.settings)
        return {
            "sizeRatio": round(size_ratio, 4),
            "accuracyDelta": round(after - before, 3),
            **{
                f"speedupBatch{batch}": {k: v for k, v in speedup(r["before"], r["after"]).items() if k != "rounds"}
                for batch, r in latencies.items()
            },
            "input": {"accuracy": before},
            "output": {"accuracy": after},
            "latencyRoundsMs": latencies,
            "note": note,
        }

    def safetensors_ratio(self, module: torch.nn.Module) -> float:
        from safetensors.torch import save_file

        with tempfile.TemporaryDirectory() as tmp:
            save_file({k: v.contiguous() for k, v in module.state_dict().items()}, Path(tmp) / "m.safetensors")
            return (Path(tmp) / "m.safetensors").stat().st_size / (
                self.teacher_dir / "model.safetensors"
            ).stat().st_size

    def torch_dynamic(self) -> dict[str, Any]:
        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantized = quantize_dynamic(copy.deepcopy(self.module), {torch.nn.Linear}, dtype=torch.qint8)

        def pickled(module: torch.nn.Module) -> int:  # its only format: torch.save, a pickle
            buffer = io.BytesIO()
            torch.save(module.state_dict(), buffer)
            return len(buffer.getvalue())

        return self.row(
            quantized,
            pickled(quantized) / pickled(self.module),
            "torch.ao.quantization.quantize_dynamic, per-tensor qint8; size via torch.save (pickle)",
        )

    def seed_prune(self) -> dict[str, Any]:
        from .seed_flawed import fine_tune_with_masks, prune_signed_threshold

        module = self.fresh()
        masks = prune_signed_threshold(module, PRUNE["sparsity"])
        kept = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
        negatives_kept = sum(int((layer.weight < 0).sum()) for _, layer in _layers(module))
        fine_tune_with_masks(
            module, masks, self.data.train, self.task, PRUNE["fineTuneEpochs"], PRUNE["learningRate"], seed=0
        )
        return self.row(
            module.eval(),
            self.safetensors_ratio(module),
            f"keeps w > threshold: {100 * (1 - kept):.0f}% pruned, {negatives_kept} negative weights "
            f"left; stored dense",
        )

    def seed_quantize(self) -> dict[str, Any]:
        from .seed_flawed import round_in_float

        module = self.fresh()
        round_in_float(module)
        return self.row(module.eval(), self.safetensors_ratio(module), "rounded to 255 levels, stored as float32")

    def seed_distill(self, epochs: int) -> dict[str, Any]:
        from .seed_flawed import copy_trained_teacher

        student = copy_trained_teacher(self.fresh(), self.data.train, self.task, epochs, 0.001, seed=0)
        return self.row(
            student,
            self.safetensors_ratio(student),
            "teacher trained further and copied: the 'student' is the teacher's architecture",
        )


def _layers(module):
    from lmaas_worker.artifacts.layers import weight_layers

    return weight_layers(module)


def tune_distillation(bench: Bench, student: list[int], seeds: int) -> dict[str, Any]:
    """The grid's settings with the best mean accuracy of the distilled student on the validation split."""
    from lmaas_api.spec import DistillStep
    from lmaas_worker.compress.distill import distill
    from lmaas_worker.compress.measure import evaluate

    grid = []
    for temperature in DISTILL_GRID["temperature"]:
        for alpha in DISTILL_GRID["alpha"]:
            for epochs in DISTILL_GRID["epochs"]:
                settings = {"temperature": temperature, "alpha": alpha, "epochs": epochs}
                step = DistillStep.parse(distill_step(student, settings))
                accuracies = [
                    evaluate(
                        distill(bench.module, step, bench.card, bench.tuning.train, bench.task, seed).student,
                        bench.tuning.val,
                        bench.task,
                    )["accuracy"]
                    for seed in range(seeds)
                ]
                grid.append({**settings, "validationAccuracy": round(statistics.mean(accuracies), 3)})
    best = max(grid, key=lambda entry: entry["validationAccuracy"])
    return {"chosen": {k: best[k] for k in ("temperature", "alpha", "epochs")}, "seeds": seeds, "grid": grid}


def distillation_over_seeds(bench: Bench, student: list[int], settings: dict[str, Any], seeds: int) -> dict[str, Any]:
    from lmaas_api.spec import DistillStep
    from lmaas_worker.compress.distill import distill
    from lmaas_worker.compress.measure import evaluate

    step = DistillStep.parse(distill_step(student, settings))
    pairs = []
    for seed in range(seeds):
        result = distill(bench.module, step, bench.card, bench.data.train, bench.task, seed)
        pairs.append(
            (
                evaluate(result.student, bench.data.val, bench.task)["accuracy"],
                evaluate(result.alone, bench.data.val, bench.task)["accuracy"],
            )
        )
    gaps = [a - b for a, b in pairs]
    return {
        "student": student,
        "settings": settings,
        "seeds": seeds,
        "distilled": [round(a, 2) for a, _ in pairs],
        "alone": [round(b, 2) for _, b in pairs],
        "meanGap": round(statistics.mean(gaps), 3),
        "minGap": round(min(gaps), 3),
        "wins": sum(g > 0 for g in gaps),
        "ties": sum(g == 0 for g in gaps),
    }


# --- output -----------------------------------------------------------------------------------


def served_memory(artifact: Path) -> dict[str, float]:
    """What serving `artifact` adds to a fresh process's resident memory (see served_memory.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.compress.served_memory", str(artifact)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def _speedup(figures: dict[str, Any]) -> str:
    low, high = figures["range"]
    text = f"{figures['median']:.2f}x ({low:.2f}-{high:.2f})"
    return f"{text}, no measurable gain" if figures["verdict"] == "no measurable gain" else text


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | scenario | size ratio | accuracy change (points) | speedup batch 1 (range) "
        "| speedup batch 32 (range) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['scenario']} | {r['sizeRatio']:.3f} | {r['accuracyDelta']:+.2f} "
            f"| {_speedup(r['speedupBatch1'])} | {_speedup(r['speedupBatch32'])} |"
        )
    return "\n".join(lines)


def memory_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | float32 served (MiB) | int8 served (MiB) | int8 / float32 |", "|---|---|---|---|"]
    for r in rows:
        before, after = r["float32"]["servedMiB"], r["int8"]["servedMiB"]
        lines.append(f"| {r['model']} | {before:.2f} | {after:.2f} | {after / before:.2f} |")
    return "\n".join(lines)


def tuning_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | student | temperature | alpha | epochs | validation accuracy (mean over seeds) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for entry in r["grid"]:
            chosen = " (chosen)" if {k: entry[k] for k in r["chosen"]} == r["chosen"] else ""
            lines.append(
                f"| {r['model']} | mlp{r['student']} | {entry['temperature']} | {entry['alpha']} "
                f"| {entry['epochs']} | {entry['validationAccuracy']:.2f}{chosen} |"
            )
    return "\n".join(lines)


def kd_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | student | settings | seeds | distilled (mean) | alone (mean) | mean gap | min gap "
        "| distilled better |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        settings = ", ".join(f"{k} {v}" for k, v in r["settings"].items())
        lines.append(
            f"| {r['model']} | mlp{r['student']} | {settings} | {r['seeds']} "
            f"| {statistics.mean(r['distilled']):.2f} | {statistics.mean(r['alone']):.2f} | {r['meanGap']:+.2f} "
            f"| {r['minGap']:+.2f} | {r['wins']}/{r['seeds']} ({r['ties']} tied) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compress", description=__doc__.splitlines()[0])
    parser.add_argument("--latency-seconds", type=float, default=1.0, help="p50 budget per model and batch size")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads while timing")
    parser.add_argument("--seeds", type=int, default=8, help="distillation repeats on the test split (0 to skip)")
    parser.add_argument("--tune-seeds", type=int, default=2, help="seeds per distillation setting while tuning")
    parser.add_argument("--rounds", type=int, default=5, help="alternating latency rounds per speedup (at least 3)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    os.environ.update(
        LMAAS_COMPRESS_LATENCY_SECONDS=str(args.latency_seconds),
        LMAAS_COMPRESS_THREADS=str(args.threads),
        LMAAS_COMPRESS_LATENCY_ROUNDS=str(args.rounds),
        LMAAS_LOG_LEVEL="WARNING",
    )
    from lmaas_worker.artifacts.int8_backend import default_kernel
    from lmaas_worker.compress.measure import LatencySettings

    settings = LatencySettings.from_env()
    rows: list[dict[str, Any]] = []
    kd: list[dict[str, Any]] = []
    tuning: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        workdir = Path(tmp)
        os.environ["LMAAS_TERMINATION_LOG"] = str(workdir / "termination-log")
        for model in args.models:
            spec = MODELS[model]
            print(f"training {model} ...", file=sys.stderr, flush=True)
            teacher = train_teacher(model, spec["hidden"], spec["epochs"], workdir)
            bench = Bench(teacher, settings)
            print(
                f"  tuning distillation on the validation split ({args.tune_seeds} seed(s) per setting)",
                file=sys.stderr,
                flush=True,
            )
            tuned = tune_distillation(bench, spec["student"], args.tune_seeds)
            tuning.append({"model": model, "student": spec["student"], **tuned})
            for scenario, steps in scenarios(spec["student"], tuned["chosen"]).items():
                print(f"  lmaas: {scenario}", file=sys.stderr, flush=True)
                max_drop = 100.0  # measure, do not gate: the table shows the figures
                result = run_lmaas(teacher, steps, workdir / f"{model}-{len(rows)}", max_drop)
                rows.append({"model": model, "scenario": f"lmaas {scenario}", **result})
                if scenario == "quantize int8":
                    memory.append(
                        {
                            "model": model,
                            "float32": served_memory(teacher),
                            "int8": served_memory(Path(result["artifact"])),
                        }
                    )
            print("  baselines", file=sys.stderr, flush=True)
            rows.append({"model": model, "scenario": "torch quantize_dynamic int8", **bench.torch_dynamic()})
            rows.append({"model": model, "scenario": "seed prune (keeps w > threshold)", **bench.seed_prune()})
            rows.append({"model": model, "scenario": "seed quantize (rounds floats)", **bench.seed_quantize()})
            rows.append(
                {
                    "model": model,
                    "scenario": "seed distill (copies the teacher)",
                    **bench.seed_distill(tuned["chosen"]["epochs"]),
                }
            )
            if args.seeds and model == "mlp-256x128":
                print(f"  distillation over {args.seeds} seeds", file=sys.stderr, flush=True)
                kd.append(
                    {"model": model, **distillation_over_seeds(bench, spec["student"], tuned["chosen"], args.seeds)}
                )
    text = "\n\n".join([table(rows), memory_table(memory), tuning_table(tuning)] + ([kd_table(kd)] if kd else []))
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"compress-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "command": "python -m bench.compress " + " ".join(argv if argv is not None else sys.argv[1:]),
                "settings": {
                    "threads": args.threads,
                    "latencySeconds": args.latency_seconds,
                    "latencyRounds": settings.rounds,
                    "int8Kernel": default_kernel(),
                    "torch": torch.__version__,
                    "cpus": os.cpu_count(),
                    "trainingData": TRAINING_DATA,
                    "reportedOn": TEST_DATA,
                },
                "wallSeconds": round(time.perf_counter() - started, 1),
                "rows": rows,
                "memory": memory,
                "distillationTuning": tuning,
                "distillation": kd,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {path.relative_to(REPO)}")
    return 0
