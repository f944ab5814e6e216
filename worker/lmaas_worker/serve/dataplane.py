"""The one data plane every protocol adapter calls: the model, its batcher and its thread.

All torch work (batched forward passes, explanations) runs in one model thread, so the event
loop stays free to read, decode and answer requests while the model computes, and torch's
intra-op threads are never oversubscribed. The thread sets its own number of them: with OpenMP,
torch.set_num_threads binds the calling thread only, and a thread that never called it computes
with one OpenMP thread per core.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from .batcher import DynamicBatcher, Outputs
from .errors import ClientError
from .metrics import Metrics
from .model import Model


class DataPlane:
    def __init__(self, model: Model, metrics: Metrics, max_batch_size: int, max_latency_ms: float, threads: int):
        self.model = model
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lmaas-model", initializer=torch.set_num_threads, initargs=(threads,)
        )
        self.arriving = 0
        """Inference requests whose body is being read: the batcher may wait for them."""
        self.draining = False
        self.state = "loading"
        """loading, ready, draining or failed: why the server is (not) ready."""
        self.batcher = DynamicBatcher(
            model.predict,
            max_batch_size,
            max_latency_ms / 1000.0,
            executor=self.executor,
            arriving=lambda: self.arriving,
            observe=metrics.observe_batch,
        )

    @property
    def ready(self) -> bool:
        return self.model.ready and not self.draining

    def start(self) -> None:
        self.batcher.start()
        self.state = "draining" if self.draining else "ready"
        self.metrics.ready.set(self.ready)

    def drain(self) -> None:
        self.draining = True
        self.state = "draining"
        self.metrics.ready.set(False)

    async def close(self) -> None:
        await self.batcher.stop()
        self.executor.shutdown(wait=True, cancel_futures=True)

    # --- what the adapters call ---------------------------------------------------------------

    def check_name(self, name: str) -> None:
        if name != self.model.name:
            raise ClientError(404, f"model {name!r} not found; this server serves {self.model.name!r}")

    def check_ready(self) -> None:
        if not self.model.ready:
            raise ClientError(
                503, f"model {self.model.name!r} is not ready yet ({self.state})", headers={"Retry-After": "1"}
            )

    async def infer(self, rows: np.ndarray) -> Outputs:
        """Outputs for one array of rows; the rows join a batch with other requests' rows."""
        self.check_ready()
        return await self.batcher.submit(rows)

    async def infer_many(self, groups: list[np.ndarray]) -> list[Outputs]:
        """Outputs for several arrays (e.g. texts of different lengths) of one request, in order."""
        self.check_ready()
        return await self.batcher.submit_many(groups)

    async def explain(self, rows: list[np.ndarray], options: dict[str, Any], where: str) -> dict[str, Any]:
        self.check_ready()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.model.explain, rows, options, where)
