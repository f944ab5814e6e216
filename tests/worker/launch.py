"""Run `lmaas train` the way pods run it: real torchrun agents, real processes, on 127.0.0.1.

Each launched process's stdout is read on a thread as it arrives, so a test can wait for a
progress event (say, a checkpoint) and then act (kill a rank).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmaas_operator.local.kubelet import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def trainjob(name: str = "test-job", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": "tests", "uid": f"uid-{name}", "generation": 1},
        "spec": spec,
    }


def write_config(directory: Path, resource: dict[str, Any], as_yaml: bool = False) -> Path:
    path = directory / ("trainjob.yaml" if as_yaml else "trainjob.json")
    path.write_text(yaml.safe_dump(resource) if as_yaml else json.dumps(resource))
    return path


def worker_env(directory: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PET_", "TORCHELASTIC_", "LMAAS_")) and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}",
        OMP_NUM_THREADS="1",
        # torchrun's shared rendezvous store keeps the previous attempt's keys, so restarted workers
        # would connect to dead peers (pytorch/pytorch#135712); pods set the same (see the operator).
        TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1",
        LMAAS_TERMINATION_LOG=str(directory / "termination-log"),
    )
    env.update(extra)
    return env


@dataclass
class Launched:
    process: subprocess.Popen
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    stdout: list[str] = field(default_factory=list)
    stderr_path: Path | None = None

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path and self.stderr_path.exists() else ""


def launch(command: list[str], env: dict[str, str], stderr_path: Path, cwd: Path | None = None) -> Launched:
    stderr = stderr_path.open("w")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True, cwd=cwd, start_new_session=True
    )
    stderr.close()
    launched = Launched(process, stderr_path=stderr_path)

    def pump() -> None:
        for line in process.stdout:
            launched.stdout.append(line)
            launched.lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return launched


def torchrun_command(
    nnodes: int, nproc: int, node_rank: int, port: int, config: Path, output: Path, max_restarts: int = 0
) -> list[str]:
    return [
        str(BIN / "torchrun"),
        "--nnodes",
        str(nnodes),
        "--nproc-per-node",
        str(nproc),
        "--node-rank",
        str(node_rank),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "lmaas-test",
        "--max-restarts",
        str(max_restarts),
        "--monitor-interval",
        "0.2",
        "--no-python",
        "lmaas",
        "train",
        "--config",
        str(config),
        "--output-dir",
        str(output),
    ]


def launch_job(
    directory: Path, config: Path, output: Path, nnodes: int, nproc: int, max_restarts: int = 0
) -> list[Launched]:
    """Start `nnodes` torchrun agents of `nproc` processes each, as an Indexed Job's pods would."""
    port = free_port()
    return [
        launch(
            torchrun_command(nnodes, nproc, node, port, config, output, max_restarts),
            worker_env(directory),
            directory / f"agent-{node}.stderr",
        )
        for node in range(nnodes)
    ]


def wait_all(agents: list[Launched], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    codes = []
    try:
        for agent in agents:
            codes.append(agent.process.wait(timeout=max(0.1, deadline - time.monotonic())))
    except subprocess.TimeoutExpired:
        stop(agents)
        raise AssertionError("training timed out:\n" + "\n".join(a.stderr()[-3000:] for a in agents)) from None
    time.sleep(0.2)  # let the reader threads drain the pipes
    return codes


def stop(agents: list[Launched]) -> None:
    for agent in agents:
        if agent.process.poll() is None:
            os.killpg(agent.process.pid, signal.SIGKILL)
            agent.process.wait()


def events(agents: list[Launched]) -> list[dict[str, Any]]:
    """Every progress line printed by any agent (rank 0 prints them), in order of arrival per agent."""
    found = []
    for agent in agents:
        for line in agent.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    parsed = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(parsed, dict) and "event" in parsed:
                    found.append(parsed)
    return found


def wait_for_event(agents: list[Launched], predicate, timeout: float) -> dict[str, Any]:
    """Block until some agent prints a progress line satisfying `predicate`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for agent in agents:
            try:
                line = agent.lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if line.startswith("{"):
                try:
                    parsed = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if predicate(parsed):
                    return parsed
        if all(a.process.poll() is not None for a in agents) and all(a.lines.empty() for a in agents):
            break
    raise AssertionError("the awaited progress event never came:\n" + "\n".join(a.stderr()[-3000:] for a in agents))


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the command name may contain spaces; the parent pid is the second field after ')'
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def worker_ranks(agent: Launched) -> dict[int, int]:
    """{global rank: pid} of the workers this torchrun agent runs now."""
    ranks = {}
    for pid in child_pids(agent.process.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                ranks[int(item[5:])] = pid
    return ranks


def run_single(
    directory: Path, config: Path, output: Path, timeout: float = 120, **env: str
) -> tuple[int, list[dict], str]:
    """`lmaas train` as one process, without torchrun: (exit status, progress events, stderr)."""
    result = subprocess.run(
        [str(BIN / "lmaas"), "train", "--config", str(config), "--output-dir", str(output)],
        env=worker_env(directory, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    parsed = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.returncode, parsed, result.stderr
