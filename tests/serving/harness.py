"""Run `lmaas serve` as a real process on 127.0.0.1 and talk to it over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
LMAAS = Path(sys.executable).parent / "lmaas"
START_TIMEOUT_S = 60.0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        document = self.json
        assert set(document) >= {"error"}, document
        return document["error"]


class ServerProcess:
    """`lmaas serve --port 0 ...`; the port is read from its log line. Always `stop()` it."""

    def __init__(self, model_dir: Path, log_path: Path, *args: str, env: dict[str, str] | None = None):
        self.log_path = log_path
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LMAAS_")}
        environment.update(
            PYTHONPATH=f"{REPO}{os.pathsep}{environment.get('PYTHONPATH', '')}",
            OMP_NUM_THREADS="1",
            LMAAS_LOG_LEVEL="INFO",
        )
        environment.update(env or {})
        self.command = [str(LMAAS), "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", "0", *args]
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            self.command, stdout=self._log, stderr=subprocess.STDOUT, env=environment, cwd=REPO
        )
        self.port: int | None = None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = START_TIMEOUT_S) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"listening on http://[^:]+:(\d+)", self.log)
            if found:
                self.port = int(found.group(1))
                return self.port
            if self.process.poll() is not None:
                raise AssertionError(f"lmaas serve exited with {self.process.returncode}:\n{self.log}")
            time.sleep(0.02)
        raise AssertionError(f"lmaas serve did not listen within {timeout} s:\n{self.log}")

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> ServerProcess:
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"lmaas serve exited with {self.process.returncode}:\n{self.log}")
            try:
                if self.get("/v2/health/ready").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"lmaas serve was not ready within {timeout} s:\n{self.log}")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30.0
    ) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            all_headers = {"Content-Type": "application/json"} if data is not None else {}
            all_headers.update(headers or {})
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def metrics(self) -> str:
        reply = self.get("/metrics")
        assert reply.status == 200, reply
        return reply.body.decode()

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def metric_value(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`; `default` when there is none."""
    total = None
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        found = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not found or found.group(1) != name:
            continue
        sample = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(3) or ""))
        if all(sample.get(k) == v for k, v in labels.items()):
            total = (total or 0.0) + float(found.group(4))
    if total is None and default is not None:
        return default
    if total is None:
        raise AssertionError(f"no sample {name}{labels} in:\n{text}")
    return total
