"""Fixtures of the serving tier: artifacts made once per session, servers started per module (or
per test when the test stops them), always killed at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from . import artifacts
from .harness import ServerProcess

TOKEN = "s3cret-serving-token-0123456789"


def pytest_configure(config):
    config.addinivalue_line("markers", "serving: starts real `lmaas serve` processes (seconds each)")


@pytest.fixture(scope="session")
def artifact_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def digits_dir(artifact_root) -> Path:
    return artifacts.digits_mlp(artifact_root / "digits-mlp")


@pytest.fixture(scope="session")
def lm_dir(artifact_root) -> Path:
    return artifacts.char_gpt(artifact_root / "char-gpt")


@pytest.fixture(scope="session")
def slow_forward_dir(artifact_root) -> Path:
    return artifacts.factory_mlp(artifact_root / "slow-forward", "slow_forward_mlp", forward_delay=0.3)


@pytest.fixture(scope="session")
def slow_loading_dir(artifact_root) -> Path:
    return artifacts.factory_mlp(artifact_root / "slow-loading", "slow_loading_mlp", load_delay=2.0)


def _starter(logs: Path) -> tuple[Callable[..., ServerProcess], list[ServerProcess]]:
    started: list[ServerProcess] = []

    def start(model_dir: Path, *flags: str, env: dict[str, str] | None = None, ready: bool = True) -> ServerProcess:
        server = ServerProcess(model_dir, logs / f"serve-{len(started)}.log", *flags, env=env)
        started.append(server)
        return server.wait_ready() if ready else server

    return start, started


@pytest.fixture(scope="module")
def start_server(tmp_path_factory) -> Iterator[Callable[..., ServerProcess]]:
    """start_server(model_dir, *flags, env=..., ready=True): a running server, stopped after the module."""
    start, started = _starter(tmp_path_factory.mktemp("serve-logs"))
    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory) -> Iterator[Callable[..., ServerProcess]]:
    """Like start_server, for the servers that many modules share (stopped at the end of the session)."""
    start, started = _starter(tmp_path_factory.mktemp("shared-serve-logs"))
    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def digits_server(shared_server, digits_dir) -> ServerProcess:
    """The digits classifier, shared: tests read its metrics as differences, never as totals."""
    return shared_server(digits_dir, "--name", "digits", "--max-batch-size", "16", "--max-latency-ms", "20")


@pytest.fixture(scope="session")
def lm_server(shared_server, lm_dir) -> ServerProcess:
    return shared_server(lm_dir, "--name", "chars")
