"""The pod's launcher passes a worker's configuration error on: torchrun alone reports every failure as 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lmaas_api import contract

from .launch import worker_env


@pytest.mark.parametrize(("worker_status", "pod_status"), [(78, contract.EXIT_CONFIG_ERROR), (3, 1), (0, 0)])
def test_the_agent_exits_78_only_when_a_worker_did(tmp_path, worker_status, pod_status):
    worker = [
        "--standalone",
        "--nproc-per-node",
        "2",
        "--no-python",
        sys.executable,
        "-c",
        f"import os, sys; sys.exit({worker_status} if os.environ['RANK'] == '1' else 0)",
    ]
    launcher = f"import sys; from lmaas_worker.train.launch import run_agent; sys.exit(run_agent({worker!r}))"
    done = subprocess.run(
        [sys.executable, "-c", launcher], env=worker_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == pod_status, done.stderr[-3000:]
