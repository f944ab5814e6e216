"""Concurrent requests of every dialect really share forward passes, and each gets its own answer."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest
import torch

from lmaas_worker.data import digits

from . import artifacts
from .harness import metric_value

pytestmark = pytest.mark.serving


def _request(dialect: str, rows: np.ndarray, name: str) -> tuple[str, dict]:
    if dialect == "seed":
        return "/predict", {"inputs": rows.tolist()}
    if dialect == "v1":
        return f"/v1/models/{name}:predict", {"instances": rows.tolist()}
    return f"/v2/models/{name}/infer", {
        "inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32", "data": rows.reshape(-1).tolist()}]
    }


def _classes(dialect: str, body: dict) -> list[int]:
    if dialect == "v2":
        return next(o for o in body["outputs"] if o["name"] == "class")["data"]
    return body["predictions"]


async def _concurrently(port: int, calls: list[tuple[str, dict]]) -> list[tuple[int, dict]]:
    connector = aiohttp.TCPConnector(limit=len(calls))
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(path: str, body: dict) -> tuple[int, dict]:
            async with session.post(f"http://127.0.0.1:{port}{path}", json=body) as response:
                return response.status, await response.json()

        return await asyncio.gather(*(one(path, body) for path, body in calls))


def _batches(server) -> tuple[float, float, float]:
    """(forward passes, of which with one row, rows) so far."""
    text = server.metrics()
    return (
        metric_value(text, "lmaas_batch_size_count"),
        metric_value(text, "lmaas_batch_size_bucket", le="1.0"),
        metric_value(text, "lmaas_batch_size_sum"),
    )


@pytest.fixture(scope="module")
def slow_server(start_server, slow_forward_dir):
    # Each forward pass sleeps 0.3 s, so the requests that arrive meanwhile must queue and batch.
    return start_server(
        slow_forward_dir, "--name", "slow", "--max-batch-size", "8", "--max-latency-ms", "50", "--trust-artifact-code"
    )


def _multi_row_calls(samples: np.ndarray, count: int, name: str):
    calls, spans, dialects, start = [], [], [], 0
    for i in range(count):  # requests of 1, 2 or 3 rows, in turn in each dialect
        size, dialect = 1 + i % 3, ("seed", "v1", "v2")[i % 3]
        calls.append(_request(dialect, samples[start : start + size], name))
        spans.append((start, start + size))
        dialects.append(dialect)
        start += size
    return calls, spans, dialects, start


def test_concurrent_requests_of_all_dialects_share_forward_passes(slow_server, slow_forward_dir):
    server = slow_server
    module, _ = artifacts.loaded(slow_forward_dir)
    rows = digits.load(seed=0).val.tensors[0][:24].numpy()
    with torch.no_grad():
        expected = module(torch.from_numpy(rows)).argmax(1).tolist()
    dialects = ["seed", "v1", "v2"] * 8
    before = _batches(server)
    calls = [_request(dialect, rows[i : i + 1], "slow") for i, dialect in enumerate(dialects)]
    replies = asyncio.run(_concurrently(server.port, calls))
    after = _batches(server)
    for i, (dialect, (status, body)) in enumerate(zip(dialects, replies)):
        assert status == 200, body
        assert _classes(dialect, body) == [expected[i]], f"request {i} ({dialect}) got another request's answer"
    passes, single, total_rows = (a - b for a, b in zip(after, before))
    assert total_rows == 24
    assert passes <= 8, f"24 concurrent requests took {passes} forward passes: not batched"
    assert passes - single >= 1, "no forward pass held more than one row"
    text = server.metrics()
    assert metric_value(text, "lmaas_batch_size_bucket", le="8.0") == metric_value(text, "lmaas_batch_size_count"), (
        "a batch exceeded --max-batch-size"
    )


@pytest.mark.parametrize("which", ["slow", "fast"])
def test_multi_row_requests_in_shared_batches_get_their_own_rows(
    which, slow_server, slow_forward_dir, digits_server, digits_dir
):
    # slow: requests surely share passes (checked); fast: a realistic model at real concurrency.
    server, directory, name = (
        (slow_server, slow_forward_dir, "slow") if which == "slow" else (digits_server, digits_dir, "digits")
    )
    module, _ = artifacts.loaded(directory)
    samples = digits.load(seed=0).val.tensors[0][:120].numpy()
    with torch.no_grad():
        expected = module(torch.from_numpy(samples)).argmax(1).tolist()
    calls, spans, dialects, total = _multi_row_calls(samples, 24 if which == "slow" else 48, name)
    before = _batches(server)
    replies = asyncio.run(_concurrently(server.port, calls))
    after = _batches(server)
    for (begin, end), dialect, (status, body) in zip(spans, dialects, replies):
        assert status == 200, body
        assert _classes(dialect, body) == expected[begin:end], "a request got rows of another request"
    passes, _, rows = (a - b for a, b in zip(after, before))
    assert rows == total
    if which == "slow":
        assert passes <= 12, f"24 concurrent requests ({total} rows, at most 8 per pass) took {passes} passes"


def test_a_request_larger_than_the_batch_is_cut_and_joined(digits_server, digits_dir):
    module, _ = artifacts.loaded(digits_dir)
    samples = digits.load(seed=0).val.tensors[0][:40].numpy()
    with torch.no_grad():
        expected = module(torch.from_numpy(samples)).argmax(1).tolist()
    reply = digits_server.post("/v1/models/digits:predict", {"instances": samples.tolist()})
    assert reply.status == 200 and reply.json["predictions"] == expected


def test_max_batch_size_one_disables_batching(start_server, digits_dir):
    server = start_server(digits_dir, "--name", "digits", "--max-batch-size", "1")
    samples = digits.load(seed=0).val.tensors[0][:32].numpy()
    before = _batches(server)
    replies = asyncio.run(_concurrently(server.port, [_request("v1", samples[i : i + 1], "digits") for i in range(32)]))
    after = _batches(server)
    assert all(status == 200 for status, _ in replies)
    passes, single, rows = (a - b for a, b in zip(after, before))
    assert passes == single == rows == 32
