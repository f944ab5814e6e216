"""Event-loop cost of `lmaas serve`: CPU microseconds of the server's event-loop thread per request,
for each inference route (KServe V1, /predict, V2), the median of several rounds, for one or more
source trees side by side (e.g. a checkout of main and this branch).

`lmaas serve` runs its event loop in the process's main thread and every forward pass in its model
thread, so the main thread's CPU time over N requests (Linux's /proc/PID/task/PID/schedstat, in
nanoseconds) is what the HTTP front, the protocol adapters and the batcher's hand-offs cost per
request, largely whatever else the machine runs. Throughput falls when this rises: on a busy
server the event loop is the bottleneck.

    .venv/bin/python -m bench.serve.loop_cost --tree /path/to/main --tree .     # about 1.5 minutes

Every tree's server runs at once on its own port (its packages first on PYTHONPATH, this
interpreter), on the digits mlp of `bench/serve` and the same one-digit requests; rounds alternate
trees and routes. 16 clients by default, where the event loop is busiest: with one client, each
request's own wake-ups and system calls, the same in every tree, are most of what is measured.
Prints a table and writes bench/results/loop-cost-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lmaas_operator.local.kubelet import free_port

from .loadgen import run_load
from .model import make_digits_artifact
from .run import MODEL, REPO, RESULTS, Server, request_bodies

ROUTES = {"V1": f"/v1/models/{MODEL}:predict", "/predict": "/predict", "V2": f"/v2/models/{MODEL}/infer"}


def loop_cpu_ns(pid: int) -> int:
    """CPU time of the process's main thread (its event loop) so far, in nanoseconds."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0])


def serve(tree: Path, name: str, artifact: Path, logs: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "lmaas_cli.main",
        "serve",
        "--model-dir",
        str(artifact),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--name",
        MODEL,
        "--threads",
        "1",
    ]
    return Server(name, command, "/v2/health/ready", port, logs / f"{name}.log", torch_threads=1)


def python_path(tree: Path) -> str:
    return os.pathsep.join(str(tree / part) for part in ("api", "operator", "worker", ""))


async def measure(server: Server, path: str, body: bytes, requests: int, concurrency: int) -> dict:
    """Event-loop microseconds per request over `requests` requests (and the load's figures)."""
    url = f"http://127.0.0.1:{server.port}{path}"
    before = loop_cpu_ns(server.process.pid)
    load = await run_load(url, body, concurrency, requests, seconds=600.0)
    spent = loop_cpu_ns(server.process.pid) - before
    if load["errors"] or load["requests"] != requests:
        raise RuntimeError(f"{server.name} {path}: {load}")
    return {"loop_us_per_request": spent / 1000 / requests, **load}


async def run(args: argparse.Namespace, servers: list[Server], bodies: dict[str, bytes]) -> dict:
    for server in servers:  # warm-up, not measured
        for route in args.routes:
            await measure(server, ROUTES[route], bodies[route], args.warmup, args.concurrency)
    runs: dict[str, dict[str, list[dict]]] = {s.name: {route: [] for route in args.routes} for s in servers}
    for round_index in range(args.rounds):
        for route in args.routes:
            for server in servers:
                result = await measure(server, ROUTES[route], bodies[route], args.requests, args.concurrency)
                runs[server.name][route].append(result)
                print(
                    f"round {round_index + 1}/{args.rounds} {server.name:<20} {route:<9} "
                    f"{result['loop_us_per_request']:7.1f} us/request  {result['requests_per_second']:8.1f} req/s",
                    file=sys.stderr,
                )
    return runs


def render_table(summary: dict[str, dict[str, float]], names: list[str], routes: list[str]) -> str:
    lines = [
        "event-loop us per request (median) | " + " | ".join(names),
        "--- | " + " | ".join("---:" for _ in names),
    ]
    for route in routes:
        lines.append(f"{route} | " + " | ".join(f"{summary[name][route]:.1f}" for name in names))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tree",
        action="append",
        type=Path,
        help="a source tree to serve from (repeatable; default: this one); its folder name labels it",
    )
    parser.add_argument("--requests", type=int, default=5000, help="per measurement (default 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per tree and route (median; default 5)")
    parser.add_argument("--warmup", type=int, default=500, help="requests per tree and route before measuring")
    parser.add_argument(
        "--routes",
        type=lambda text: text.split(","),
        default=list(ROUTES),
        help=f"comma-separated, of {', '.join(ROUTES)} (default: all)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="clients, each one request at a time (default 16)")
    args = parser.parse_args(argv)
    if unknown := set(args.routes) - set(ROUTES):
        parser.error(f"--routes: no route {', '.join(sorted(unknown))}; the routes are {', '.join(ROUTES)}")
    trees = [tree.resolve() for tree in args.tree or [REPO]]
    names = [f"{tree.name}" if [t.name for t in trees].count(tree.name) == 1 else str(tree) for tree in trees]

    from lmaas_worker.data import digits

    workdir = Path(tempfile.mkdtemp(prefix="lmaas-bench-loop-cost-"))
    artifact = workdir / "digits-mlp"
    make_digits_artifact(artifact)
    bodies = request_bodies(digits.load(seed=0).val.tensors[0][0].tolist())
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMAAS_")}
    servers = [serve(tree, name, artifact, workdir) for tree, name in zip(trees, names, strict=True)]
    try:
        for tree, server in zip(trees, servers, strict=True):
            server.start({**env, "PYTHONPATH": python_path(tree)})
        for server in servers:
            server.wait_ready()
        try:
            import uvloop

            runs = uvloop.run(run(args, servers, bodies))
        except ImportError:
            runs = asyncio.run(run(args, servers, bodies))
    finally:
        for server in servers:
            server.stop()

    summary = {
        name: {route: statistics.median(r["loop_us_per_request"] for r in results) for route, results in by.items()}
        for name, by in runs.items()
    }
    print(render_table(summary, names, args.routes))
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "serve-loop-cost",
        "command": "python -m bench.serve.loop_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {
            "trees": {name: str(tree) for name, tree in zip(names, trees, strict=True)},
            "requests": args.requests,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "routes": {route: ROUTES[route] for route in args.routes},
            "request": "one digit (64 floats) per request",
        },
        "summary_us_per_request": summary,
        "runs": runs,
    }
    path = RESULTS / f"loop-cost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
