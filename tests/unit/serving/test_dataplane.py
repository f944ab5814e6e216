"""The data plane's model thread computes with the intra-op threads the server was given."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Run in a fresh interpreter without OMP_NUM_THREADS, as a pod without that variable runs.
PROBE = """
import os, types
import torch
from lmaas_worker.serve.dataplane import DataPlane
from lmaas_worker.serve.metrics import Metrics

torch.set_num_threads(1)  # a main thread's setting, which does not reach other threads
plane = DataPlane(types.SimpleNamespace(predict=None), Metrics(), 4, 1.0, threads=1)

def threads_a_matmul_starts():
    x = torch.randn(512, 512)
    before = len(os.listdir("/proc/self/task"))
    for _ in range(20):
        x @ x
    return len(os.listdir("/proc/self/task")) - before

print(plane.executor.submit(threads_a_matmul_starts).result())
plane.executor.shutdown()
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: an unbounded OpenMP team has no other thread")
def test_the_model_thread_starts_no_threads_beyond_the_ones_configured():
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    probe = subprocess.run([sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "0"
