"""Dynamic batching: concurrent requests share one forward pass.

Requests put their rows on a queue and await a future. One batcher task takes queued requests,
whole and in arrival order, up to `max_batch_size` rows, runs ONE call of `run` (the model's
predict, in the model thread, so the event loop keeps reading requests meanwhile) and hands each
request its slice of the outputs. A request larger than `max_batch_size` is cut into chunks that
are queued one after the other, and its outputs are joined again.

When does a batch start? As soon as one of these holds:
- it holds `max_batch_size` rows;
- `max_latency` has passed since its oldest request was queued;
- no request that the server has begun reading is still on its way to the queue (`arriving()`
  is 0): waiting could not fill the batch further, so a lone request is never delayed.
Requests that arrive while a batch runs are queued and form the next batch, so under load
batches grow by themselves, while at low load no request waits for company that is not coming.
`max_batch_size` 1 disables batching. If a batched forward pass fails, its requests are run again
one by one, so that a request the model cannot take fails alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

Outputs = dict[str, np.ndarray]


@dataclass(slots=True)
class _Item:
    rows: np.ndarray
    future: asyncio.Future
    queued_at: float


class DynamicBatcher:
    def __init__(
        self,
        run: Callable[[list[np.ndarray]], list[Outputs]],
        max_batch_size: int,
        max_latency_s: float,
        executor: Executor | None = None,
        arriving: Callable[[], int] = lambda: 0,
        observe: Callable[[int, float], None] | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_latency_s = max(0.0, max_latency_s)
        self.executor = executor
        self.arriving = arriving
        self.observe = observe
        self._queue: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="lmaas-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server stopped before this request ran"))

    async def submit(self, rows: np.ndarray) -> Outputs:
        """The model's outputs for `rows` (n >= 1 rows), computed in some batch."""
        if len(rows) <= self.max_batch_size:
            return await self._enqueue(rows)
        return (await self.submit_many([rows]))[0]

    async def submit_many(self, groups: list[np.ndarray]) -> list[Outputs]:
        """Outputs for several arrays at once (all queued before the first is awaited), in order."""
        limit = self.max_batch_size
        if len(groups) == 1 and len(groups[0]) <= limit:  # the usual request: one future, no gathering
            return [await self._enqueue(groups[0])]
        futures = [[self._enqueue(rows[i : i + limit]) for i in range(0, len(rows), limit)] for rows in groups]
        done = iter(await asyncio.gather(*(f for chunks in futures for f in chunks)))
        results = []
        for chunks in futures:
            parts = [next(done) for _ in chunks]
            results.append(
                parts[0]
                if len(parts) == 1
                else {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
            )
        return results

    def _enqueue(self, rows: np.ndarray) -> asyncio.Future:
        if self._task is None:
            raise RuntimeError("the batcher is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append(_Item(rows, future, loop.time()))
        self._wakeup.set()
        return future

    def _take(self, batch: list[_Item], rows: int) -> int:
        """Move queued requests into `batch` while they fit; return the batch's row count."""
        while self._queue and rows + len(self._queue[0].rows) <= self.max_batch_size:
            item = self._queue.popleft()
            if item.future.done():  # cancelled by a caller that went away
                continue
            batch.append(item)
            rows += len(item.rows)
        return rows

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.max_batch_size > 1:
                await asyncio.sleep(0)  # requests already read in this turn of the loop join the queue first
            batch: list[_Item] = []
            rows = self._take(batch, 0)
            if batch:
                deadline = batch[0].queued_at + self.max_latency_s
                while rows < self.max_batch_size and not self._queue and self.arriving() > 0:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except TimeoutError:
                        break
                    rows = self._take(batch, rows)
            if batch:
                await self._execute(loop, batch, rows)

    async def _call(self, loop: asyncio.AbstractEventLoop, inputs: list[np.ndarray]) -> list[Outputs]:
        if self.executor is None:
            return self.run(inputs)
        return await loop.run_in_executor(self.executor, self.run, inputs)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item], rows: int) -> None:
        started = time.perf_counter()
        try:
            results = await self._call(loop, [item.rows for item in batch])
        except Exception as error:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(error)
            else:  # run each request alone, so that one request the model fails on fails alone
                for item in batch:
                    await self._execute(loop, [item], len(item.rows))
                return
        else:
            for item, result in zip(batch, results):
                if not item.future.done():
                    item.future.set_result(result)
        if self.observe is not None:
            self.observe(rows, time.perf_counter() - started)
