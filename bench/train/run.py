"""`python -m bench.train`: the TrainJob worker beside a plain torchrun DDP script, one after the other.

1. Throughput: `lmaas train` (ddp, 2 processes) against bench/train/baseline_ddp.py doing the same
   work: model, data and order, batch size, optimizer, number of steps, a checkpoint every N steps
   and after the last, a held-out evaluation at the end. Runs alternate. The headline is each
   run's whole wall time, from starting torchrun to its exit; the second row compares 10-step
   intervals of training, pauses left out. Medians with their spread (min-max) over the runs.
2. Memory: per-rank peak RSS of fsdp against ddp on a char-gpt big enough for sharding to show.
3. A killed rank: the same job run clean, then with one rank SIGKILLed shortly before a
   checkpoint is due (torchrun --max-restarts 1); time lost and steps redone.

Prints a table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from lmaas_operator.local.kubelet import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RESULTS = REPO / "bench" / "results"


def environment(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PET_", "LMAAS_", "TORCHELASTIC_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        OMP_NUM_THREADS="1",
        TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1",
        LMAAS_TERMINATION_LOG=str(workdir / "termination-log"),
    )
    env.update(extra)
    return env


def torchrun(nproc: int, *command: str, max_restarts: int = 0) -> list[str]:
    return [
        str(BIN / "torchrun"),
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{free_port()}",
        "--max-restarts",
        str(max_restarts),
        "--monitor-interval",
        "0.2",
        *command,
    ]


class Run:
    """A started process whose stdout lines are collected (and queued) as they come."""

    def __init__(self, command: list[str], workdir: Path, env: dict[str, str] | None = None):
        self.started = time.perf_counter()
        self.stderr_path = workdir / f"stderr-{len(list(workdir.glob('stderr-*')))}.log"
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env or environment(workdir), cwd=REPO
            )
        self.lines: list[str] = []
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            self.queue.put(line)

    def wait(self, timeout: float = 900) -> float:
        code = self.process.wait(timeout=timeout)
        wall = time.perf_counter() - self.started
        time.sleep(0.2)
        if code != 0:
            raise RuntimeError(f"{self.process.args[-6:]} exited {code}:\n{self.stderr_path.read_text()[-4000:]}")
        return wall

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.startswith('{"event"')]


def trainjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": spec,
    }


def start_worker(
    workdir: Path, resource: dict[str, Any], nproc: int = 2, max_restarts: int = 0, env: dict[str, str] | None = None
) -> Run:
    output = workdir / resource["metadata"]["name"]
    config = workdir / f"{resource['metadata']['name']}.json"
    config.write_text(json.dumps(resource))
    return Run(
        torchrun(
            nproc,
            "--no-python",
            "lmaas",
            "train",
            "--config",
            str(config),
            "--output-dir",
            str(output),
            max_restarts=max_restarts,
        ),
        workdir,
        env,
    )


def run_worker(
    workdir: Path, resource: dict[str, Any], nproc: int = 2, env: dict[str, str] | None = None
) -> dict[str, Any]:
    run = start_worker(workdir, resource, nproc, env=env)
    wall = run.wait()
    done = run.events()[-1]
    return {"wall": wall, "metrics": done["artifact"]["metrics"], "events": run.events()}


def run_baseline(
    workdir: Path, hidden: list[int], batch: int, steps: int, checkpoint_every: int, nproc: int = 2
) -> dict[str, Any]:
    checkpoints = Path(tempfile.mkdtemp(prefix="baseline-checkpoints-", dir=workdir))
    command = torchrun(
        nproc,
        str(Path(__file__).with_name("baseline_ddp.py")),
        "--hidden",
        *map(str, hidden),
        "--batch-size",
        str(batch),
        "--steps",
        str(steps),
        "--checkpoint-every",
        str(checkpoint_every),
        "--checkpoint-dir",
        str(checkpoints),
    )
    run = Run(command, workdir)
    wall = run.wait()
    result = json.loads(next(line for line in reversed(run.lines) if line.startswith("{")))
    return {"wall": wall, **result}


# --- 1. throughput -------------------------------------------------------------------------


def throughput(
    workdir: Path, hidden: list[int], batch: int, steps: int, checkpoint_every: int, repeats: int
) -> dict[str, Any]:
    worker, baseline = [], []
    for i in range(repeats):
        resource = trainjob(
            f"throughput-{'x'.join(map(str, hidden))}-{i}",
            model={"builtin": "mlp", "args": {"hidden": hidden}},
            dataset={"builtin": "digits"},
            strategy="ddp",
            hyperparameters={
                "epochs": 10_000,
                "maxSteps": steps,
                "batchSize": batch,
                "learningRate": 0.003,
                "logEverySteps": 10,
                "evalEverySteps": 10 * steps,
            },
            checkpoint={"everySteps": checkpoint_every, "keep": 2},
        )
        worker.append(run_worker(workdir, resource))
        baseline.append(run_baseline(workdir, hidden, batch, steps, checkpoint_every))
    samples = baseline[0]["samples"]  # the same steps over the same data order: the same samples on both sides
    worker_rates = [samples / r["wall"] for r in worker]
    baseline_rates = [samples / r["wall"] for r in baseline]
    worker_intervals = [
        [e["samplesPerSecond"] for e in r["events"] if e["event"] == "progress" and e["samplesPerSecond"]]
        for r in worker
    ]
    baseline_intervals = [r["intervalSamplesPerSecond"] for r in baseline]
    worker_interval = statistics.median(v for run in worker_intervals for v in run)
    baseline_interval = statistics.median(v for run in baseline_intervals for v in run)
    return {
        "model": f"mlp {hidden}",
        "batchSize": batch,
        "steps": steps,
        "checkpointEverySteps": checkpoint_every,
        "processes": 2,
        "repeats": repeats,
        "samples": samples,
        "workerWallSeconds": [r["wall"] for r in worker],
        "baselineWallSeconds": [r["wall"] for r in baseline],
        "workerSamplesPerSecond": statistics.median(worker_rates),
        "workerRange": [min(worker_rates), max(worker_rates)],
        "baselineSamplesPerSecond": statistics.median(baseline_rates),
        "baselineRange": [min(baseline_rates), max(baseline_rates)],
        "ratio": statistics.median(worker_rates) / statistics.median(baseline_rates),
        "pairRatios": [w / b for w, b in zip(worker_rates, baseline_rates)],
        "workerIntervalSamplesPerSecond": worker_interval,
        "baselineIntervalSamplesPerSecond": baseline_interval,
        "intervalRatio": worker_interval / baseline_interval,
        "intervalRatiosPerPair": [
            statistics.median(w) / statistics.median(b) for w, b in zip(worker_intervals, baseline_intervals)
        ],
        # outside the training loop: starting processes, imports, rendezvous, building; the end of the run
        "workerOutsideLoopSeconds": statistics.median(r["wall"] - r["metrics"]["trainSeconds"] for r in worker),
        "baselineOutsideLoopSeconds": statistics.median(r["wall"] - r["trainSeconds"] for r in baseline),
        "workerFinalLoss": statistics.median(r["metrics"]["trainLoss"] for r in worker),
        "baselineFinalLoss": statistics.median(r["finalLoss"] for r in baseline),
        "workerAccuracy": statistics.median(r["metrics"]["accuracy"] for r in worker),
        "baselineAccuracy": statistics.median(r["accuracy"] for r in baseline),
    }


# --- 2. memory -----------------------------------------------------------------------------


def memory(workdir: Path, layers: int, embedding: int, steps: int) -> dict[str, Any]:
    result: dict[str, Any] = {"model": f"char-gpt {layers} layers x {embedding}", "processes": 2}
    for strategy in ("ddp", "fsdp"):
        resource = trainjob(
            f"memory-{strategy}",
            model={
                "builtin": "char-gpt",
                "args": {"layers": layers, "heads": 8, "embedding": embedding, "context": 64},
            },
            dataset={"builtin": "shakespeare", "validationFraction": 0.02},
            strategy=strategy,
            hyperparameters={"maxSteps": steps, "batchSize": 8, "learningRate": 0.0003, "logEverySteps": 1},
            checkpoint={"everySteps": 10 * steps, "keep": 1},
        )
        # glibc's adaptive mmap threshold keeps freed blocks of a few MiB in the heap, so RSS would
        # stay at its high-water mark whatever the strategy; a fixed threshold returns them at once.
        run = run_worker(workdir, resource, env=environment(workdir, MALLOC_MMAP_THRESHOLD_="131072"))
        card = json.loads((workdir / f"memory-{strategy}" / "artifact" / "model.json").read_text())
        result["parameters"] = card["parameters"]
        result[strategy] = {
            "peakRssTrainingBytesPerRank": run["metrics"]["peakRssTrainingBytesPerRank"],
            "peakRssBytesPerRank": run["metrics"]["peakRssBytesPerRank"],
            "modelStateBytesPerRank": run["metrics"]["modelStateBytesPerRank"],
            "samplesPerSecond": run["metrics"]["samplesPerSecond"],
            "trainLoss": run["metrics"]["trainLoss"],
        }
    return result


# --- 3. a killed rank ----------------------------------------------------------------------

KILLED_MODEL = {"layers": 2, "heads": 4, "embedding": 64, "context": 64}


def killed_rank(workdir: Path, steps: int, every: int, kill_at: int) -> dict[str, Any]:
    # shakespeare's epoch (about 1,200 steps here) is longer than the run, so only everySteps checkpoints
    def resource(name: str) -> dict[str, Any]:
        return trainjob(
            name,
            model={"builtin": "char-gpt", "args": KILLED_MODEL},
            dataset={"builtin": "shakespeare"},
            strategy="ddp",
            hyperparameters={
                "maxSteps": steps,
                "batchSize": 16,
                "learningRate": 0.002,
                "logEverySteps": 1,
                "evalEverySteps": 10 * steps,
            },
            checkpoint={"everySteps": every, "keep": 2},
        )

    clean = start_worker(workdir, resource("clean"))
    clean_wall = clean.wait()
    killed = start_worker(workdir, resource("killed"), max_restarts=1)
    while True:
        line = killed.queue.get(timeout=600)
        if line.startswith('{"event": "progress"') and json.loads(line)["step"] >= kill_at:
            break
    agent = killed.process.pid
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == agent]
    victim = max(children, key=lambda pid: _rank(pid))
    os.kill(victim, signal.SIGKILL)
    killed_wall = killed.wait()
    events = killed.events()
    resume_index = next(i for i, e in enumerate(events) if e["event"] == "resume")
    reached = max(e["step"] for e in events[:resume_index] if e["event"] == "progress")
    resumed = events[resume_index]["step"]
    return {
        "model": f"char-gpt {KILLED_MODEL}",
        "steps": steps,
        "checkpointEverySteps": every,
        "killedAfterStep": reached,
        "resumedFromStep": resumed,
        "stepsRedone": reached - resumed,
        "cleanWallSeconds": clean_wall,
        "killedWallSeconds": killed_wall,
        "secondsLost": killed_wall - clean_wall,
        "secondsPerStep": clean.events()[-1]["artifact"]["metrics"]["trainSeconds"] / steps,
    }


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _rank(pid: int) -> int:
    try:
        for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if item.startswith(b"RANK="):
                return int(item[5:])
    except OSError:
        pass
    return -1


# --- report --------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    mib = 1024 * 1024
    rows = ["| measurement | lmaas train | baseline / reference | ratio or difference |", "| --- | --- | --- | --- |"]
    for t in results["throughput"]:
        rows.append(
            f"| whole run, {t['model']}, batch {t['batchSize']}, {t['steps']} steps, checkpoint every "
            f"{t['checkpointEverySteps']} and at the end, final evaluation, ddp x2: samples/s from starting "
            f"torchrun to its exit, median (min-max) of {t['repeats']} alternating runs "
            f"| {t['workerSamplesPerSecond']:,.0f} ({_range(t['workerRange'])}) "
            f"| {t['baselineSamplesPerSecond']:,.0f} ({_range(t['baselineRange'])}) (hand-written DDP) "
            f"| **{t['ratio']:.3f}** ({_range(t['pairRatios'], '.3f')} run by run; target >= 0.97) |"
        )
        rows.append(
            f"| training samples/s, {t['model']}: median of 10-step intervals over all runs, pauses left out "
            f"| {t['workerIntervalSamplesPerSecond']:,.0f} | {t['baselineIntervalSamplesPerSecond']:,.0f} "
            f"| {t['intervalRatio']:.3f} ({_range(t['intervalRatiosPerPair'], '.3f')} run by run) |"
        )
        rows.append(
            f"| seconds outside the training loop, {t['model']} (start, imports, rendezvous, build; checkpoints, "
            f"evaluation, artifact), median | {t['workerOutsideLoopSeconds']:.1f} "
            f"| {t['baselineOutsideLoopSeconds']:.1f} "
            f"| {t['workerOutsideLoopSeconds'] - t['baselineOutsideLoopSeconds']:+.1f} s |"
        )
    m = results["memory"]
    for key, label in (
        ("modelStateBytesPerRank", "parameters + optimizer state"),
        ("peakRssTrainingBytesPerRank", "peak RSS while training"),
        ("peakRssBytesPerRank", "peak RSS, whole run"),
    ):
        fsdp, ddp = m["fsdp"][key], m["ddp"][key]
        rows.append(
            f"| {label} per rank, {m['model']} ({m['parameters'] / 1e6:.1f} M params) "
            f"| fsdp {', '.join(f'{v / mib:,.0f}' for v in fsdp)} MiB "
            f"| ddp {', '.join(f'{v / mib:,.0f}' for v in ddp)} MiB "
            f"| {', '.join(f'{(f - d) / mib:+,.0f}' for f, d in zip(fsdp, ddp))} MiB |"
        )
    k = results["killedRank"]
    rows.append(
        f"| a rank SIGKILLed at step {k['killedAfterStep']} of {k['steps']} (checkpoint every {k['checkpointEverySteps']}) "
        f"| {k['killedWallSeconds']:.1f} s, resumed from step {k['resumedFromStep']}, {k['stepsRedone']} steps redone "
        f"| {k['cleanWallSeconds']:.1f} s clean | {k['secondsLost']:+.1f} s lost: "
        f"{k['stepsRedone'] * k['secondsPerStep']:.1f} s redoing steps, the rest restarting |"
    )
    return "\n".join(rows)


def _range(values: list[float], spec: str = ",.0f") -> str:
    return f"{min(values):{spec}}-{max(values):{spec}}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side per throughput model")
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer steps (a smoke run)")
    args = parser.parse_args(argv)
    repeats, scale = (1, 0.2) if args.quick else (args.repeats, 1.0)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="lmaas-bench-train-") as tmp:
        workdir = Path(tmp)
        results: dict[str, Any] = {
            "benchmark": "train",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        }
        import torch

        results["machine"]["torch"] = torch.__version__
        results["throughput"] = [
            throughput(workdir, [128, 64], 32, int(1000 * scale), int(250 * scale), repeats),
            throughput(workdir, [1024, 1024], 64, int(300 * scale), int(100 * scale), repeats),
        ]
        results["memory"] = memory(workdir, layers=8, embedding=512, steps=3 if args.quick else 5)
        results["killedRank"] = killed_rank(workdir, steps=600, every=100, kill_at=390)
    results["seconds"] = time.time() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"train-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(started))}.json"
    path.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"\nresults: {path.relative_to(REPO)} ({results['seconds']:.0f} s)")
    return 0
