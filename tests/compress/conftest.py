"""The compression worker tier: a real model trained once by the training worker, then compressed.

The teacher is the builtin digits MLP, trained in this process by `lmaas_worker.train.run_training`
(a world of one), exactly as a TrainJob's pod would, once per session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

TEACHER = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "digits-teacher", "namespace": "tests", "uid": "uid-teacher", "generation": 1},
    "spec": {
        "model": {"builtin": "mlp", "args": {"hidden": [256, 128], "dropout": 0.3}},
        "dataset": {"builtin": "digits"},
        "hyperparameters": {
            "epochs": 40,
            "batchSize": 64,
            "learningRate": 0.003,
            "weightDecay": 0.05,
            "logEverySteps": 1000,
        },
        "checkpoint": {"everySteps": 100000, "keep": 1},
    },
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts real torchrun agents or worker processes (seconds each)")


@pytest.fixture(scope="session")
def teacher(tmp_path_factory) -> Path:
    """The artifact directory of a trained digits MLP (about 99% held-out accuracy)."""
    from lmaas_worker.train import run_training

    directory = tmp_path_factory.mktemp("teacher")
    config = directory / "trainjob.json"
    config.write_text(json.dumps(TEACHER))
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LMAAS_TERMINATION_LOG", str(directory / "termination-log"))
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LMAAS_CONFIG", "LMAAS_OUTPUT_DIR", "LMAAS_BACKEND"):
            patch.delenv(name, raising=False)
        torch.set_num_threads(1)
        try:
            assert run_training(config, directory / "out") == 0
        finally:
            torch.set_num_threads(threads)
    return directory / "out" / "artifact"


@pytest.fixture(autouse=True)
def worker_environment(tmp_path, monkeypatch):
    """Short latency budgets, one thread, and a termination log in the test's own directory."""
    path = tmp_path / "termination-log"
    monkeypatch.setenv("LMAAS_TERMINATION_LOG", str(path))
    monkeypatch.setenv("LMAAS_COMPRESS_LATENCY_SECONDS", "0.05")
    monkeypatch.setenv("LMAAS_COMPRESS_THREADS", "1")
    for name in ("LMAAS_CONFIG", "LMAAS_INPUT_DIR", "LMAAS_OUTPUT_DIR", "LMAAS_OUTPUT_URI", "LMAAS_INT8_KERNEL"):
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float arithmetic whatever the machine's core count
    yield path
    torch.set_num_threads(threads)


def compressjob(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "CompressJob",
        "metadata": {"name": name, "namespace": "tests", "uid": f"uid-{name}", "generation": 1},
        "spec": {"model": {"fromTrainJob": "digits-teacher"}, "steps": steps, **spec},
    }


def progress_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
