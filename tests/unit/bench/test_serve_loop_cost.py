"""The event-loop cost benchmark counts the CPU time of a process's main thread, and of no other thread."""

from __future__ import annotations

import os
import threading
import time

from bench.serve.loop_cost import loop_cpu_ns


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_only_the_main_threads_cpu_time_is_counted():
    pid = os.getpid()
    before = loop_cpu_ns(pid)
    worker = threading.Thread(target=_spin, args=(0.2,))
    worker.start()
    worker.join()
    other = loop_cpu_ns(pid) - before
    _spin(0.2)
    own = loop_cpu_ns(pid) - before - other
    assert own >= 0.19e9 and other < 0.05e9, (own, other)
