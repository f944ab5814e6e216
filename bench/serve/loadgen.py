"""A lean, bounded HTTP/1.1 load generator: C keep-alive connections, each sending one request at a
time (closed loop), for at most N requests or T seconds in all, whichever comes first.

It is written on raw asyncio protocols (uvloop when installed) rather than on an HTTP client
library, so that the generator costs little CPU and the server under test, which shares the
machine, gets most of it. Every server in the benchmark is measured with this same generator.

    python -m bench.serve.loadgen --url http://127.0.0.1:8080/predict --body '{"inputs": [[...]]}' \
        --concurrency 16 --requests 5000 --seconds 10

prints one JSON object: requests, errors, seconds, requests_per_second, p50_ms, p90_ms, p99_ms,
statuses (count per status code), connections (TCP connections opened: the concurrency when the
server keeps them alive, one per request when it closes each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 10.0


class _Budget:
    """The shared stop condition: a request count and a deadline."""

    def __init__(self, requests: int, seconds: float):
        self.left = requests
        self.deadline = time.perf_counter() + seconds

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.left -= 1
        return True


class _Slot:
    """One of the C clients of the closed loop: sends a request, waits for its response, repeats.

    It keeps its connection alive; when a server answers `Connection: close` (Flask's development
    server does, every time), the slot connects anew, and the connect time counts in the latency,
    as it would for a real client of that server.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        request: bytes,
        budget: _Budget,
        latencies: list[float],
        statuses: dict[int, int],
    ):
        self.loop = loop
        self.host, self.port = host, port
        self.request = request
        self.budget = budget
        self.latencies = latencies
        self.statuses = statuses
        self.done = loop.create_future()
        self.started_at = 0.0
        self.connections = 0

    async def connect(self) -> None:
        await asyncio.wait_for(
            self.loop.create_connection(lambda: _Connection(self), self.host, self.port), CONNECT_TIMEOUT_S
        )

    def next_request(self, connection: _Connection | None) -> None:
        """Send the next request on `connection`, or on a new one when it is None."""
        if not self.budget.take():
            if connection is not None:
                connection.closing = True
                connection.transport.close()
            self.finish()
            return
        self.started_at = time.perf_counter()
        if connection is None:
            self.connections += 1
            task = self.loop.create_task(self.connect())
            task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or self.fail(t.exception()))
        else:
            connection.transport.write(self.request)

    def record(self, status: int) -> None:
        self.latencies.append(time.perf_counter() - self.started_at)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)


class _Connection(asyncio.Protocol):
    def __init__(self, slot: _Slot):
        self.slot = slot
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.slot.done.done():
            transport.close()
            return
        transport.write(self.slot.request)  # the slot took the budget before connecting

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        lines = bytes(self.buffer[:head_end]).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = None, lines[0].startswith("HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value == "close"
        if length is None:
            self.slot.fail(RuntimeError(f"response without Content-Length: {lines[0]!r}"))
            self.transport.close()
            return
        if len(self.buffer) < head_end + 4 + length:
            return
        if len(self.buffer) > head_end + 4 + length:
            self.slot.fail(RuntimeError("unexpected bytes after a response"))
            self.transport.close()
            return
        self.buffer.clear()
        self.slot.record(status)
        if close:
            self.closing = True
            self.transport.close()
            self.slot.next_request(None)
        else:
            self.slot.next_request(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.slot.fail(exc or ConnectionError("the server closed the connection"))


def build_request(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: keep-alive"]
    if method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body if method == "POST" else b"")


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_load(
    url: str, body: bytes, concurrency: int, requests: int, seconds: float, headers: dict[str, str] | None = None
) -> dict:
    """Run the closed loop and return its figures."""
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    request = build_request(url, body, headers)
    budget = _Budget(requests, seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    slots = [_Slot(loop, parts.hostname, parts.port, request, budget, latencies, statuses) for _ in range(concurrency)]
    started = time.perf_counter()
    for slot in slots:
        slot.next_request(None)
    results = await asyncio.wait_for(asyncio.gather(*(s.done for s in slots), return_exceptions=True), seconds + 30)
    elapsed = time.perf_counter() - started
    failures = [r for r in results if isinstance(r, BaseException)]
    latencies.sort()
    ok = statuses.get(200, 0)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "ok": ok,
        "errors": len(latencies) - ok + len(failures),
        "connection_failures": [repr(f) for f in failures[:3]],
        "seconds": round(elapsed, 3),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "connections": sum(s.connections for s in slots),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="request body, or @FILE")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--header", action="append", default=[], help="NAME: VALUE (repeatable)")
    args = parser.parse_args(argv)
    body = open(args.body[1:], "rb").read() if args.body.startswith("@") else args.body.encode()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(run_load(args.url, body, args.concurrency, args.requests, args.seconds, headers))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
