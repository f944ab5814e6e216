"""What every step reports: size on disk, parameters (and nonzero ones), latency, quality.

Latency is the median (p50) of single forward passes on CPU at batch 1 and batch 32, with a
fixed number of intra-op threads, after a warm-up, repeated for a time budget (at least
MIN_REPEATS passes). Quality is held-out accuracy in points (classifiers) or perplexity (language
models), computed on the validation split with the training worker's task definitions.

The speedup of the output over the input is not the ratio of two such figures taken one after the
other (a loaded machine moved that ratio from 0.44x to 1.07x for the same models): both models are
timed again in `rounds` alternating rounds (input then output, then output then input, ...), each
round's p50s give one ratio, and the report gives their median and spread (`report.speedup`).

LMAAS_COMPRESS_THREADS (default 1), LMAAS_COMPRESS_LATENCY_SECONDS (default 1.0, per model and
batch size; the rounds share one such budget per model) and LMAAS_COMPRESS_LATENCY_ROUNDS (default
5, at least 3) set the thread count, the budget and the rounds.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.batches import batches
from ..train.tasks import Task

THREADS_ENV = "LMAAS_COMPRESS_THREADS"
BUDGET_ENV = "LMAAS_COMPRESS_LATENCY_SECONDS"
ROUNDS_ENV = "LMAAS_COMPRESS_LATENCY_ROUNDS"
MIN_ROUNDS = 3
MIN_REPEATS = 15
WARM_UP = 5
LATENCY_BATCHES = (1, 32)
EVAL_BATCH_SIZE = 256


@dataclass(frozen=True)
class LatencySettings:
    threads: int = 1
    budget_seconds: float = 1.0
    rounds: int = 5

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LatencySettings:
        env = os.environ if environ is None else environ
        return cls(
            threads=max(1, int(env.get(THREADS_ENV, "1"))),
            budget_seconds=max(0.0, float(env.get(BUDGET_ENV, "1.0"))),
            rounds=max(MIN_ROUNDS, int(env.get(ROUNDS_ENV, "5"))),
        )


@dataclass(frozen=True)
class Measurement:
    name: str
    size_bytes: int
    parameters: int
    nonzero_parameters: int
    accuracy: float | None
    """Held-out accuracy in points (0-100); None for language models."""
    perplexity: float | None
    loss: float
    latency_ms: dict[int, float]

    @property
    def quality(self) -> float:
        return quality(self.accuracy, self.perplexity)

    def entry(self) -> dict[str, Any]:
        """The `steps` entry of the report summary (the keys the operator and the contract name)."""
        return {
            "name": self.name,
            "sizeBytes": self.size_bytes,
            "parameters": self.parameters,
            "nonzeroParameters": self.nonzero_parameters,
            "accuracy": _round(self.accuracy, 3),
            "perplexity": _round(self.perplexity, 4),
            "latencyMsBatch1": _round(self.latency_ms.get(1), 4),
            "latencyMsBatch32": _round(self.latency_ms.get(32), 4),
        }


def quality(accuracy: float | None, perplexity: float | None) -> float:
    """The figure a model is judged by: held-out accuracy for a classifier, else perplexity."""
    return accuracy if accuracy is not None else perplexity


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


@contextlib.contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.inference_mode()
def evaluate(module: nn.Module, dataset: Dataset, task: Task) -> dict[str, float | None]:
    """{"accuracy": points or None, "perplexity": or None, "loss"} on the whole split."""
    module.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    for x, y in batches(dataset, range(len(dataset)), EVAL_BATCH_SIZE):
        totals += task.batch_totals(module(x), y, torch.ones(len(y)))
    value, loss = task.metric_value(totals)
    if task.metric == "accuracy":
        return {"accuracy": 100.0 * value, "perplexity": None, "loss": loss}
    return {"accuracy": None, "perplexity": value, "loss": loss}


def example_batch(dataset: Dataset, size: int) -> torch.Tensor:
    inputs = [dataset[i % len(dataset)][0] for i in range(size)]
    return torch.stack(inputs)


@torch.inference_mode()
def latency_p50_ms(
    module: nn.Module, inputs: torch.Tensor, settings: LatencySettings, budget_seconds: float | None = None
) -> float:
    module.eval()
    with intra_op_threads(settings.threads):
        for _ in range(WARM_UP):
            module(inputs)
        times: list[float] = []
        deadline = time.perf_counter() + (settings.budget_seconds if budget_seconds is None else budget_seconds)
        while len(times) < MIN_REPEATS or time.perf_counter() < deadline:
            started = time.perf_counter()
            module(inputs)
            times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def count_parameters(state: dict[str, torch.Tensor], parameter_names: set[str]) -> tuple[int, int]:
    """(parameters, nonzero parameters) of a float32 state dict, counting only parameters (no buffers)."""
    tensors = [t for name, t in state.items() if name in parameter_names]
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


def measure(
    name: str,
    module: nn.Module,
    weights_file: os.PathLike,
    state: dict[str, torch.Tensor],
    parameter_names: set[str],
    data: Dataset,
    task: Task,
    settings: LatencySettings,
) -> Measurement:
    quality = evaluate(module, data, task)
    parameters, nonzero = count_parameters(state, parameter_names)
    latency = {batch: latency_p50_ms(module, example_batch(data, batch), settings) for batch in LATENCY_BATCHES}
    return Measurement(
        name=name,
        size_bytes=os.path.getsize(weights_file),
        parameters=parameters,
        nonzero_parameters=nonzero,
        accuracy=quality["accuracy"],
        perplexity=quality["perplexity"],
        loss=quality["loss"],
        latency_ms=latency,
    )


def interleaved_latencies(
    before: nn.Module, after: nn.Module, data: Dataset, settings: LatencySettings
) -> dict[int, dict[str, list[float]]]:
    """{batch: {"before": p50 ms per round, "after": p50 ms per round}}, the two models timed in
    alternating order round by round, so that a change in the machine's load hits both alike."""
    budget = settings.budget_seconds / settings.rounds
    rounds: dict[int, dict[str, list[float]]] = {}
    for batch in LATENCY_BATCHES:
        inputs = example_batch(data, batch)
        timings: dict[str, list[float]] = {"before": [], "after": []}
        for index in range(settings.rounds):
            order = (("before", before), ("after", after))
            for name, module in order if index % 2 == 0 else reversed(order):
                timings[name].append(latency_p50_ms(module, inputs, settings, budget))
        rounds[batch] = timings
    return rounds
