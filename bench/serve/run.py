"""The serving benchmark: lmaas serve against KServe's Python ModelServer and the seed's Flask app,
the latter both as deployed (on gunicorn) and as the seed ran it (on Flask's development server).

Same model (the builtin digits mlp, trained for a few seconds), same machine, same load
generator (bench/serve/loadgen.py, in its own process), at concurrency 1, 16 and 64. All servers
run at once on their own ports and are measured in turns, round after round, so that a noisy
neighbour slows all of them alike; each figure is the median over the rounds.

    bash bench/serve/setup_baselines.sh      # once: the baselines' own virtual environments
    .venv/bin/python -m bench.serve          # about 5.5 minutes; --help for options

Prints a table and writes bench/results/serve-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lmaas_operator.local.kubelet import free_port
from lmaas_worker.serve.config import available_cpus

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = REPO / "bench" / "results"
MODEL = "digits"
GUNICORN_KEEP_ALIVE_S = 5  # the top of the 1-5 s gunicorn advises for clients that connect directly


@dataclass
class Server:
    name: str
    command: list[str]
    ready_path: str
    port: int
    log: Path
    torch_threads: int
    """Per process; the command sets them with torch.set_num_threads, start() in OMP_NUM_THREADS too."""
    process: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        # torch.set_num_threads binds OpenMP in the calling thread only: where the forward pass runs in
        # another thread (lmaas' model thread, gunicorn's and werkzeug's request threads), OpenMP can
        # start a team of one thread per core there, on a machine the load generator shares.
        env = {**env, "OMP_NUM_THREADS": str(self.torch_threads)}
        self.process = subprocess.Popen(
            self.command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=REPO
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {timeout} s; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@dataclass(frozen=True)
class Gunicorn:
    """The Flask app as it is deployed: gunicorn, one worker process per core.

    The worker class is gthread because gunicorn's default sync worker closes the connection after
    every response; gthread keeps it alive (idle connections wait in the worker's poller, not in a
    thread). Four threads per worker, as in gunicorn's own gthread example: while one request's
    thread computes, another's reads or writes its socket or runs a torch op (both release the GIL).
    The torch threads given to every server (--threads) are shared by the workers, at least one
    each, so that the workers do not oversubscribe the cores.
    """

    workers: int
    threads: int
    torch_threads: int

    def command(self, python: Path, artifact: Path) -> list[str]:
        app = f"bench.serve.baseline_flask:create_app({str(artifact)!r}, torch_threads={self.torch_threads})"
        return [
            str(python),
            "-m",
            "gunicorn",
            "--bind",
            "127.0.0.1:{port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(self.threads),
            "--keep-alive",
            str(GUNICORN_KEEP_ALIVE_S),
            "--no-control-socket",
            app,
        ]


@dataclass
class Contender:
    """One endpoint of one server, as the load generator calls it."""

    name: str
    server: Server
    path: str
    body: bytes
    results: dict[int, list[dict]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}{self.path}"


def post(url: str, body: bytes) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def load(contender: Contender, concurrency: int, requests: int, seconds: float) -> dict:
    slug = "".join(c if c.isalnum() else "-" for c in contender.name)
    body_file = Path(tempfile.gettempdir()) / f"lmaas-bench-body-{os.getpid()}-{slug}.json"
    body_file.write_bytes(contender.body)
    command = [
        sys.executable,
        "-m",
        "bench.serve.loadgen",
        "--url",
        contender.url,
        "--body",
        f"@{body_file}",
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--seconds",
        str(seconds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed against {contender.name}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def build_servers(
    artifact: Path,
    threads: int,
    logs: Path,
    kserve_python: Path,
    flask_python: Path,
    kserve_quiet: bool,
    gunicorn: Gunicorn,
) -> list[Server]:
    lmaas = Server(
        "lmaas",
        [
            str(REPO / ".venv" / "bin" / "lmaas"),
            "serve",
            "--model-dir",
            str(artifact),
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--name",
            MODEL,
            "--threads",
            str(threads),
        ],
        "/v2/health/ready",
        free_port(),
        logs / "lmaas.log",
        threads,
    )
    kserve_flags = ["--enable_latency_logging", "false"] if kserve_quiet else []
    kserve = Server(
        "kserve",
        [
            str(kserve_python),
            str(HERE / "baseline_kserve.py"),
            "--model-dir",
            str(artifact),
            "--model_name",
            MODEL,
            "--http_port",
            "{port}",
            "--grpc_port",
            str(free_port()),
            "--threads",
            str(threads),
            *kserve_flags,
        ],
        f"/v1/models/{MODEL}",
        free_port(),
        logs / "kserve.log",
        threads,
    )
    flask_gunicorn = Server(
        "flask-gunicorn",
        gunicorn.command(flask_python, artifact),
        "/health",
        free_port(),
        logs / "flask-gunicorn.log",
        gunicorn.torch_threads,
    )
    flask_dev = Server(
        "flask-dev",
        [
            str(flask_python),
            str(HERE / "baseline_flask.py"),
            "--model-dir",
            str(artifact),
            "--port",
            "{port}",
            "--threads",
            str(threads),
        ],
        "/health",
        free_port(),
        logs / "flask-dev.log",
        threads,
    )
    servers = [lmaas, kserve, flask_gunicorn, flask_dev]
    for server in servers:
        server.command = [part.replace("{port}", str(server.port)) for part in server.command]
    return servers


def request_bodies(row: list[float]) -> dict[str, bytes]:
    """The request of one digit (`row`, 64 floats) in each dialect: V1, /predict, V2."""
    return {
        "V1": json.dumps({"instances": [row]}).encode(),
        "/predict": json.dumps({"inputs": [row]}).encode(),
        "V2": json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": row}]}).encode(),
    }


def contenders_for(servers: dict[str, Server], row: list[float]) -> list[Contender]:
    bodies = request_bodies(row)
    v1, seed, v2 = bodies["V1"], bodies["/predict"], bodies["V2"]
    return [
        Contender("lmaas V1", servers["lmaas"], f"/v1/models/{MODEL}:predict", v1),
        Contender("kserve V1", servers["kserve"], f"/v1/models/{MODEL}:predict", v1),
        Contender("lmaas /predict", servers["lmaas"], "/predict", seed),
        Contender("flask gunicorn /predict", servers["flask-gunicorn"], "/predict", seed),
        Contender("flask dev server /predict", servers["flask-dev"], "/predict", seed),
        Contender("lmaas V2", servers["lmaas"], f"/v2/models/{MODEL}/infer", v2),
    ]


def check_same_answers(contenders: list[Contender], rows: list[list[float]]) -> list[int]:
    """Every contender gives the same classes for the same digits: the same model is served."""
    answers = {}
    for contender in contenders:
        if "V2" in contender.name:
            body = {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [len(rows), 64],
                        "datatype": "FP32",
                        "data": [v for r in rows for v in r],
                    }
                ]
            }
            reply = post(contender.url, json.dumps(body).encode())
            answers[contender.name] = next(o for o in reply["outputs"] if o["name"] == "class")["data"]
        else:
            key = "inputs" if contender.path == "/predict" else "instances"
            answers[contender.name] = post(contender.url, json.dumps({key: rows}).encode())["predictions"]
    distinct = {json.dumps(a) for a in answers.values()}
    if len(distinct) != 1:
        raise RuntimeError(f"the servers disagree: {answers}")
    return next(iter(answers.values()))


def summarize(contender: Contender, concurrency: int) -> dict:
    runs = contender.results[concurrency]
    return {
        "requests_per_second": statistics.median(r["requests_per_second"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "connections": statistics.median(r["connections"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="lmaas serve vs KServe vs the seed's Flask app (on gunicorn and on Flask's development server)"
    )
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated (default 1,16,64)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    parser.add_argument("--requests", type=int, default=100_000, help="at most, per measurement (default 100000)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per contender and concurrency (median)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads of every server (default 1); gunicorn's workers share them, at least one each",
    )
    cores = available_cpus()
    parser.add_argument(
        "--gunicorn-workers",
        type=int,
        default=cores,
        help=f"gunicorn worker processes (default: one per core this process may use, {cores})",
    )
    parser.add_argument("--gunicorn-threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--kserve-python", default="/tmp/kserve-venv/bin/python")
    parser.add_argument("--flask-python", default="/tmp/flask-venv/bin/python")
    parser.add_argument(
        "--kserve-defaults",
        action="store_true",
        help="keep KServe's per-request latency log lines (off by default: a stronger baseline)",
    )
    args = parser.parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    gunicorn = Gunicorn(args.gunicorn_workers, args.gunicorn_threads, max(1, args.threads // args.gunicorn_workers))
    for python in (args.kserve_python, args.flask_python):
        if not Path(python).exists():
            print(f"{python} is missing: run bash bench/serve/setup_baselines.sh first", file=sys.stderr)
            return 2

    sys.path.insert(0, str(REPO))
    from bench.serve.model import make_digits_artifact
    from lmaas_worker.data import digits

    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="lmaas-bench-serve-"))
    artifact = workdir / "digits-mlp"
    model_metrics = make_digits_artifact(artifact)
    samples = digits.load(seed=0).val.tensors[0][:16].tolist()
    row = samples[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMAAS_")}
    env["PYTHONUNBUFFERED"] = "1"
    servers = build_servers(
        artifact,
        args.threads,
        workdir,
        Path(args.kserve_python),
        Path(args.flask_python),
        kserve_quiet=not args.kserve_defaults,
        gunicorn=gunicorn,
    )
    by_name = {s.name: s for s in servers}
    contenders = contenders_for(by_name, row)
    try:
        for server in servers:
            server.start(env)
        for server in servers:
            server.wait_ready()
        predictions = check_same_answers(contenders, samples)
        print(f"all servers ready and agreeing on {len(samples)} digits: {predictions}", file=sys.stderr)
        for contender in contenders:  # warm-up, not measured
            load(contender, 16, 2000, 1.0)
        for round_index in range(args.rounds):
            for concurrency in concurrencies:
                for contender in contenders:
                    result = load(contender, concurrency, args.requests, args.seconds)
                    contender.results.setdefault(concurrency, []).append(result)
                    print(
                        f"round {round_index + 1}/{args.rounds} c={concurrency:<3} {contender.name:<25} "
                        f"{result['requests_per_second']:>9.1f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                        f"p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}  "
                        f"connections {result['connections']}",
                        file=sys.stderr,
                    )
    finally:
        for server in servers:
            server.stop()

    summary = {c.name: {str(k): summarize(c, k) for k in concurrencies} for c in contenders}
    ratios = {}
    for k in concurrencies:
        ours, kserve = summary["lmaas V1"][str(k)], summary["kserve V1"][str(k)]
        seed = summary["lmaas /predict"][str(k)]
        on_gunicorn = summary["flask gunicorn /predict"][str(k)]
        on_dev_server = summary["flask dev server /predict"][str(k)]
        rate = seed["requests_per_second"]
        ratios[str(k)] = {
            "throughput_vs_kserve": round(ours["requests_per_second"] / kserve["requests_per_second"], 2),
            "p99_vs_kserve": round(ours["p99_ms"] / kserve["p99_ms"], 2),
            "throughput_vs_flask_gunicorn": round(rate / on_gunicorn["requests_per_second"], 2),
            "p99_vs_flask_gunicorn": round(seed["p99_ms"] / on_gunicorn["p99_ms"], 2),
            "throughput_vs_flask_dev_server": round(rate / on_dev_server["requests_per_second"], 2),
        }
    table = render_table(summary, ratios, concurrencies)
    print(table)
    document = {
        "benchmark": "serve",
        "command": "python -m bench.serve " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {
            "concurrency": concurrencies,
            "seconds": args.seconds,
            "max_requests": args.requests,
            "rounds": args.rounds,
            "torch_threads": args.threads,
            "omp_num_threads": "each server's torch threads per process",
            "kserve_latency_logging": args.kserve_defaults,
            "flask_gunicorn": {
                "workers": gunicorn.workers,
                "worker_class": "gthread",
                "threads_per_worker": gunicorn.threads,
                "torch_threads_per_worker": gunicorn.torch_threads,
                "keep_alive_s": GUNICORN_KEEP_ALIVE_S,
            },
            "flask_dev_server": "werkzeug, threaded; closes the connection after every response",
            "lmaas_batching": {"max_batch_size": 32, "max_latency_ms": 5},
            "model": {"artifact": "builtin mlp 64-128-64-10 on digits", **model_metrics},
            "request": "one digit (64 floats) per request",
        },
        "versions": versions(args),
        "summary": summary,
        "ratios": ratios,
        "runs": {c.name: {str(k): v for k, v in c.results.items()} for c in contenders},
    }
    path = RESULTS / f"serve-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten {path.relative_to(REPO)}")
    return 0


def versions(args: argparse.Namespace) -> dict[str, str]:
    def ask(python: str, code: str) -> str:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
        return done.stdout.strip() or "?"

    metadata = "from importlib.metadata import version as v; print(v('{}'))"
    return {
        "torch": ask(sys.executable, "import torch; print(torch.__version__)"),
        "aiohttp": ask(sys.executable, metadata.format("aiohttp")),
        "kserve": ask(args.kserve_python, metadata.format("kserve")),
        "flask": ask(args.flask_python, metadata.format("flask")),
        "gunicorn": ask(args.flask_python, metadata.format("gunicorn")),
    }


def render_table(summary: dict, ratios: dict, concurrencies: list[int]) -> str:
    lines = [
        "| server / endpoint | " + " | ".join(f"c={k} req/s | p50 ms | p99 ms" for k in concurrencies) + " |",
        "| --- | " + " | ".join("---: | ---: | ---:" for _ in concurrencies) + " |",
    ]
    for name, by_concurrency in summary.items():
        cells = []
        for k in concurrencies:
            s = by_concurrency[str(k)]
            cells.append(f"{s['requests_per_second']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| ratio | " + " | ".join(f"c={k}" for k in concurrencies) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in concurrencies) + " |")
    for key, label in (
        ("throughput_vs_kserve", "lmaas V1 / KServe V1 throughput (target >= 1.5)"),
        ("p99_vs_kserve", "lmaas V1 / KServe V1 p99 latency (target < 1)"),
        ("throughput_vs_flask_gunicorn", "lmaas /predict / Flask on gunicorn throughput (target >= 3)"),
        ("p99_vs_flask_gunicorn", "lmaas /predict / Flask on gunicorn p99 latency"),
        ("throughput_vs_flask_dev_server", "lmaas /predict / Flask development server throughput (not a deployment)"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{ratios[str(k)][key]:.2f}" for k in concurrencies) + " |")
    lines.append("")
    lines.append(
        "| TCP connections opened per measurement (median) | " + " | ".join(f"c={k}" for k in concurrencies) + " |"
    )
    lines.append("| --- | " + " | ".join("---:" for _ in concurrencies) + " |")
    for name, by_concurrency in summary.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{by_concurrency[str(k)]['connections']:.0f}" for k in concurrencies) + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
