"""The dynamic batcher on its own: grouping, splitting, waiting and failing, with a fake model."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lmaas_worker.serve.batcher import DynamicBatcher


class FakeModel:
    """Doubles each row; records the row count of every call."""

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.calls: list[list[int]] = []
        self.delay = delay
        self.fail = fail

    def __call__(self, batch: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        self.calls.append([len(rows) for rows in batch])
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("forward failed")
        return [{"double": rows * 2, "sum": rows.sum(axis=1)} for rows in batch]


def run(coroutine):
    return asyncio.run(coroutine)


def rows(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32).reshape(n, 1).repeat(3, axis=1)


async def _with_batcher(model, max_batch_size, max_latency_s, body, arriving=lambda: 0, executor=None, observe=None):
    batcher = DynamicBatcher(
        model, max_batch_size, max_latency_s, executor=executor, arriving=arriving, observe=observe
    )
    batcher.start()
    try:
        return await body(batcher)
    finally:
        await batcher.stop()


def test_concurrent_requests_share_one_call_and_each_gets_its_own_rows():
    model = FakeModel()

    async def body(batcher):
        return await asyncio.gather(*(batcher.submit(rows(10 * i, 1 + i % 2)) for i in range(6)))

    results = run(_with_batcher(model, 16, 0.01, body))
    assert model.calls == [[1, 2, 1, 2, 1, 2]]  # one forward pass, requests whole and in order
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["double"], rows(10 * i, 1 + i % 2) * 2)
        assert result["sum"].shape == (1 + i % 2,)


def test_batches_never_exceed_the_maximum_and_requests_are_never_split_across_batches():
    model = FakeModel()

    async def body(batcher):
        return await asyncio.gather(*(batcher.submit(rows(i, 3)) for i in range(5)))

    results = run(_with_batcher(model, 7, 0.0, body))
    assert [sum(call) for call in model.calls] == [6, 6, 3]
    assert all(all(n == 3 for n in call) for call in model.calls)
    assert [r["double"][0, 0] for r in results] == [2 * i for i in range(5)]


def test_a_request_larger_than_the_maximum_is_cut_and_joined_in_order():
    model = FakeModel()

    async def body(batcher):
        return await batcher.submit(rows(0, 10))

    result = run(_with_batcher(model, 4, 0.0, body))
    assert [sum(call) for call in model.calls] == [4, 4, 2]
    np.testing.assert_array_equal(result["double"], rows(0, 10) * 2)
    np.testing.assert_array_equal(result["sum"], rows(0, 10).sum(axis=1))


def test_submit_many_keeps_the_order_of_groups_of_different_shapes():
    model = FakeModel()

    async def body(batcher):
        return await batcher.submit_many([rows(0, 2), np.ones((1, 5), np.float32), rows(7, 1)])

    first, second, third = run(_with_batcher(model, 8, 0.0, body))
    assert first["double"].shape == (2, 3) and second["double"].shape == (1, 5) and third["double"][0, 0] == 14
    assert model.calls == [[2, 1, 1]]


def test_a_lone_request_does_not_wait_for_company():
    model = FakeModel()

    async def body(batcher):
        started = time.perf_counter()
        await batcher.submit(rows(0, 1))
        return time.perf_counter() - started

    assert run(_with_batcher(model, 32, 5.0, body)) < 1.0  # not the 5 s maximum latency


def test_the_batch_waits_for_arriving_requests_but_at_most_the_maximum_latency():
    model = FakeModel()
    arriving = {"count": 1}

    async def late_arrival(batcher):
        first = asyncio.ensure_future(batcher.submit(rows(0, 1)))
        await asyncio.sleep(0.05)  # a second request is still being read
        arriving["count"] = 0
        second = asyncio.ensure_future(batcher.submit(rows(1, 1)))
        await asyncio.gather(first, second)

    run(_with_batcher(model, 8, 1.0, late_arrival, arriving=lambda: arriving["count"]))
    assert model.calls == [[1, 1]]  # it waited for the arriving request

    model = FakeModel()
    arriving["count"] = 1  # a request announced that never comes (say, a bad body)

    async def never(batcher):
        started = time.perf_counter()
        await batcher.submit(rows(0, 1))
        return time.perf_counter() - started

    waited = run(_with_batcher(model, 8, 0.2, never, arriving=lambda: arriving["count"]))
    assert 0.15 <= waited < 2.0 and model.calls == [[1]]


def test_max_batch_size_one_runs_every_request_alone():
    model = FakeModel()

    async def body(batcher):
        await asyncio.gather(*(batcher.submit(rows(i, 1)) for i in range(5)))

    run(_with_batcher(model, 1, 0.05, body))
    assert model.calls == [[1]] * 5


def test_requests_arriving_during_a_forward_pass_form_the_next_batch():
    model = FakeModel(delay=0.2)
    executor = ThreadPoolExecutor(1)
    sizes = []

    async def body(batcher):
        first = asyncio.ensure_future(batcher.submit(rows(0, 1)))
        await asyncio.sleep(0.05)  # the first pass is running in the model thread
        rest = [asyncio.ensure_future(batcher.submit(rows(i, 1))) for i in range(1, 6)]
        await asyncio.gather(first, *rest)

    run(_with_batcher(model, 16, 0.0, body, executor=executor, observe=lambda n, s: sizes.append(n)))
    executor.shutdown()
    assert model.calls == [[1], [1, 1, 1, 1, 1]]
    assert sizes == [1, 5]


def test_a_request_the_model_fails_on_fails_alone_and_the_batcher_goes_on():
    class Picky(FakeModel):
        def __call__(self, batch):
            self.calls.append([len(rows) for rows in batch])
            if any((rows < 0).any() for rows in batch):
                raise ValueError("negative input")
            return [{"double": rows * 2} for rows in batch]

    model = Picky()

    async def body(batcher):
        requests = [rows(1, 1), -rows(1, 1), rows(3, 1)]
        outcomes = await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)
        after = await batcher.submit(rows(9, 1))
        return outcomes, after

    (good, bad, other), after = run(_with_batcher(model, 8, 0.0, body))
    assert isinstance(bad, ValueError)
    assert good["double"][0, 0] == 2 and other["double"][0, 0] == 6 and after["double"][0, 0] == 18
    assert model.calls[:4] == [[1, 1, 1], [1], [1], [1]]  # the batch failed, then each request alone


def test_rejects_a_zero_batch_size():
    with pytest.raises(ValueError):
        DynamicBatcher(FakeModel(), 0, 0.0)
