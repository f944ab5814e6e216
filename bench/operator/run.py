"""The operator at scale on the test control plane: N custom resources applied at once.

Each run starts a control plane of its own (nothing of an earlier run stays in etcd, the API
server's caches or the controllers), waits until it idles, and starts one controller. For each N
(default 200 and 1,000): N resources of the three kinds (a third
each, ModelServices and CompressJobs reading a `uri:` model so that all have children at once)
created by a pool of client threads as fast as the API server takes them; a watch per child kind
notes when each child appears; a fast kubelet stand-in binds every new pod and marks it Running.
Reported: time until every resource has all its children and a status, p50/p99 from a resource's
creation (the client's create returning) to its last child existing, the operator's peak RSS
(VmHWM of the `lmaas operator` process), and API server requests per resource (all clients: the
operator, the controllers, this load generator and the stand-in; from apiserver_request_total).
Each figure is the median over the runs, with the lowest and highest.

    python -m bench.operator [--counts 200 1000] [--repeats N] [--workers N] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes
from prometheus_client.parser import text_string_to_metric_families

from lmaas_api.crds import GROUP, VERSION, load_crds
from lmaas_operator.local.kubelet import free_port
from tests.cluster import TestCluster
from tests.integration.kubelet import Kubelet
from tests.integration.operators import CHILDREN, resources, scrape

from .profile import Sampler, report

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
PLURALS = {kind: crd.plural for kind, crd in load_crds().items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def api_requests(cluster: TestCluster) -> dict[str, float]:
    """apiserver_request_total by verb, resource and subresource (all clients)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(cluster.request("GET", "/metrics", accept="text/plain")):
        for sample in family.samples:
            if sample.name == "apiserver_request_total":
                labels = sample.labels
                key = " ".join(filter(None, (labels.get("verb"), labels.get("resource"), labels.get("subresource"))))
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def handler_seconds(url: str) -> dict[str, float]:
    """Mean time in each create/status handler, from the operator's own duration histogram."""
    sums, counts = {}, {}
    for (name, labels), number in scrape(url).items():
        handler = dict(labels).get("handler")
        if name == "lmaas_operator_reconcile_duration_seconds_sum":
            sums[handler] = number
        elif name == "lmaas_operator_reconcile_duration_seconds_count":
            counts[handler] = number
    return {h: round(sums[h] / counts[h], 3) for h in sums if counts.get(h)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raw_watch(list_function, *args, stop: threading.Event, what: str, **kwargs):
    """Watch events as plain dicts (no model classes: the benchmark shares the CPUs it measures)."""
    while not stop.is_set():
        try:
            for event in kubernetes.watch.Watch().stream(
                list_function, *args, deserialize=False, timeout_seconds=30, **kwargs
            ):
                if stop.is_set():
                    return
                yield event
        except (kubernetes.client.ApiException, OSError) as error:  # restarted; say why
            print(f"  (watch of {what} restarted: {error})", file=sys.stderr)


class ChildWatch:
    """When each child (by kind and name) was first seen, from one watch per child kind."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str):
        self.seen: dict[tuple[str, str], float] = {}
        self.with_status: set[tuple[str, str]] = set()  # resources whose status has a phase
        self._stop = threading.Event()
        core, batch, apps = (
            kubernetes.client.CoreV1Api(api),
            kubernetes.client.BatchV1Api(api),
            kubernetes.client.AppsV1Api(api),
        )
        lists = {
            "service": core.list_namespaced_service,
            "job": batch.list_namespaced_job,
            "deployment": apps.list_namespaced_deployment,
        }
        for kind, list_function in lists.items():
            threading.Thread(target=self._watch, args=(kind, list_function, namespace), daemon=True).start()
        custom = kubernetes.client.CustomObjectsApi(api)
        for kind, plural in PLURALS.items():
            threading.Thread(target=self._watch_writes, args=(kind, custom, plural, namespace), daemon=True).start()

    def _watch_writes(self, kind, custom, plural, namespace) -> None:
        """When the controller first wrote to each resource (its first change after creation), and
        which have a status phase (from the watch, not by listing them all again and again)."""
        for event in raw_watch(
            custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural, stop=self._stop, what=plural
        ):
            key = (kind, event["object"]["metadata"]["name"])
            if event["type"] == "MODIFIED":
                self.seen.setdefault(key, time.monotonic())
            if (event["object"].get("status") or {}).get("phase"):
                self.with_status.add(key)

    def _watch(self, kind, list_function, namespace) -> None:
        for event in raw_watch(
            list_function,
            namespace,
            stop=self._stop,
            what=f"{kind}s",
            label_selector="app.kubernetes.io/managed-by=lmaas-operator",
        ):
            self.seen.setdefault((kind, event["object"]["metadata"]["name"]), time.monotonic())

    def stop(self) -> None:
        self._stop.set()


def stand_in_kubelet(kubelet: Kubelet, namespace: str, stop: threading.Event) -> None:
    """Bind every new pod of the namespace and mark it Running, once, from a watch (as a scheduler
    and a kubelet would)."""
    for event in raw_watch(kubelet.core.list_namespaced_pod, namespace, stop=stop, what="pods"):
        pod = event["object"]
        if event["type"] != "ADDED" or pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            continue
        try:
            kubelet.start_new(pod)
        except kubernetes.client.ApiException as error:
            # A pod deleted meanwhile needs nothing; after the run, the namespace is going.
            if error.status != 404 and not stop.is_set():
                raise


CONTROLLERS = ("lmaas", "baseline")
IDLE_CPU = 0.1  # CPU-seconds per second; a fresh control plane idles at about 0.02 on the development VM


def settle(pids: dict[str, int], idle_cpu: float = IDLE_CPU, timeout: float = 120) -> float:
    """Wait until processes idle (together under `idle_cpu` CPU-seconds per second: a fresh API
    server and controller-manager bootstrap for a while after they answer, a controller lists and
    watches); the seconds waited."""
    started = time.monotonic()
    before = sum(cpu_seconds(pid) for pid in pids.values())
    while time.monotonic() - started < timeout:
        time.sleep(1)
        now = sum(cpu_seconds(pid) for pid in pids.values())
        if now - before < idle_cpu:
            return round(time.monotonic() - started, 1)
        before = now
    raise TimeoutError(f"{', '.join(pids)} still used over {idle_cpu} CPU-seconds per second after {timeout:.0f} s")


def start_controller(controller: str, cluster: TestCluster, namespace: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`lmaas operator` (namespaced, no peering, its metrics on a free port), or the bare
    controller of bench/operator/baseline.py; the metrics URL or ''."""
    metrics_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "LMAAS_PEERING": "",
        "LMAAS_LIVENESS_ENDPOINT": "",
        "LMAAS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "LMAAS_LOG_FORMAT": "plain",
        "LMAAS_LOG_LEVEL": "WARNING",
        "LMAAS_NAMESPACE": namespace,
    }
    if controller == "lmaas":
        command, url = (
            [str(Path(sys.executable).parent / "lmaas"), "operator"],
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
    else:
        command, url = [sys.executable, "-m", "bench.operator.baseline", "--namespace", namespace], ""
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return process, url


def run_on_fresh_control_plane(controller: str, count: int, workers: int, profile: Path | None) -> dict:
    """One run on a control plane started for it, with `profile` the file for py-spy's samples of
    the controller, if any."""
    with TestCluster(verbose=False) as cluster:
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        api.configuration.connection_pool_maxsize = 32
        # The node, its log endpoint and its deletions; stand_in_kubelet starts the pods with it.
        kubelet = Kubelet(api, cluster.dir / "pki" / "apiserver.crt", cluster.dir / "pki" / "apiserver.key").start()
        try:
            return run_once(cluster, api, kubelet, controller, count, workers, profile)
        finally:
            kubelet.stop()


def run_once(
    cluster: TestCluster, api, kubelet: Kubelet, controller: str, count: int, workers: int, profile: Path | None
) -> dict:
    core = kubernetes.client.CoreV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace = f"scale-{controller}-{count}-{uuid.uuid4().hex[:4]}"
    core.create_namespace({"metadata": {"name": namespace}})
    while not core.list_namespaced_service_account(namespace).items:
        time.sleep(0.2)
    process, metrics_url = start_controller(controller, cluster, namespace, RESULTS / f"{controller}-{count}.log")
    time.sleep(3)  # the controller's watches are up before the burst
    settled = settle({"controller": process.pid, **cluster.pids()})
    watch = ChildWatch(api, namespace)
    stop = threading.Event()
    player = threading.Thread(target=stand_in_kubelet, args=(kubelet, namespace, stop), daemon=True)
    player.start()
    docs = resources(count)
    requests_before = api_requests(cluster)
    processes = {"controller": process.pid, "benchmark": os.getpid(), **cluster.pids()}
    cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    created: dict[tuple[str, str], float] = {}
    sampler = Sampler(process.pid, profile) if profile else None

    def create(doc):
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[doc["kind"]], doc)
        created[(doc["kind"], doc["metadata"]["name"])] = time.monotonic()

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(create, docs))
    burst = time.monotonic() - started

    def children_done(doc) -> float | None:
        times = [watch.seen.get((child, doc["metadata"]["name"] + suffix)) for child, suffix in CHILDREN[doc["kind"]]]
        return None if None in times else max(times)

    deadline = started + 600
    statuses = watch.with_status
    while time.monotonic() < deadline and process.poll() is None:
        if len(statuses) == count and all(children_done(d) for d in docs):
            break
        time.sleep(0.2)
    finished = time.monotonic() - started
    latencies = [children_done(d) - created[(d["kind"], d["metadata"]["name"])] for d in docs if children_done(d)]
    first_write = [watch.seen[key] - created[key] for key in created if key in watch.seen]
    rss = peak_rss_mib(process.pid)
    handlers = handler_seconds(metrics_url) if metrics_url else {}
    cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 1) for name, pid in processes.items()}
    requests_after = api_requests(cluster)
    requests = {key: value - requests_before.get(key, 0.0) for key, value in requests_after.items()}
    requests = {
        key: round(value / count, 2)
        for key, value in sorted(requests.items(), key=lambda kv: -kv[1])
        if value >= count / 10
    }
    if sampler:
        sampler.stop()
    stop.set()
    watch.stop()
    process.terminate()
    process.wait(timeout=60)
    return {
        "controller": controller,
        "resources": count,
        "profiled": bool(profile),
        "settleSeconds": settled,
        "reconciled": len(latencies),
        "withStatus": len(statuses),
        "createBurstSeconds": round(burst, 1),
        "allDoneSeconds": round(finished, 1),
        "p50ChildrenSeconds": round(statistics.median(latencies), 2) if latencies else None,
        "p99ChildrenSeconds": round(percentile(latencies, 99), 2) if latencies else None,
        "p50FirstWriteSeconds": round(statistics.median(first_write), 2) if first_write else None,
        "p99FirstWriteSeconds": round(percentile(first_write, 99), 2) if first_write else None,
        "peakRssMiB": round(rss),
        "cpuSeconds": cpu,
        "apiRequestsPerResource": round(sum(requests.values()), 1),
        "apiRequestsPerResourceBy": requests,
        "meanHandlerSeconds": handlers,
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}


def summary(rows: list[dict]) -> list[dict]:
    """Median, lowest and highest over the runs of each (size, controller)."""
    table = []
    for count in dict.fromkeys(r["resources"] for r in rows):
        for controller in CONTROLLERS:
            runs = [r for r in rows if r["resources"] == count and r["controller"] == controller]
            if not runs:
                continue
            figures = {
                key: spread([r[key] for r in runs if r[key] is not None])
                for key in (
                    "allDoneSeconds",
                    "p50ChildrenSeconds",
                    "p99ChildrenSeconds",
                    "peakRssMiB",
                    "apiRequestsPerResource",
                )
                if any(r[key] is not None for r in runs)
            }
            table.append(
                {
                    "resources": count,
                    "controller": controller,
                    "runs": len(runs),
                    "reconciled": min(r["reconciled"] for r in runs),
                    "withStatus": min(r["withStatus"] for r in runs),
                    **figures,
                    "controllerCpuSeconds": spread([r["cpuSeconds"]["controller"] for r in runs]),
                    "apiServerCpuSeconds": spread([r["cpuSeconds"]["kube-apiserver"] for r in runs]),
                }
            )
    return table


def shown(figure: dict[str, float] | None, unit: str = "") -> str:
    """median (lowest-highest)"""
    if figure is None:
        return "-"
    return f"{figure['median']}{unit} ({figure['min']}-{figure['max']})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each controller at each size (alternating)")
    parser.add_argument("--controllers", nargs="+", choices=CONTROLLERS, default=list(CONTROLLERS))
    parser.add_argument("--workers", type=int, default=8, help="client threads creating the resources")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each controller with py-spy (bench/operator/profile.py); its times are no figures",
    )
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for count in args.counts:
        for repeat in range(1, args.repeats + 1):
            # Alternate which goes first, so that neither always runs while the machine is fresher.
            for controller in args.controllers[:: -1 if repeat % 2 == 0 else 1]:
                print(f"{count} resources, {controller}, run {repeat} ...", flush=True)
                profile = RESULTS / f"profile-{controller}-{count}-{repeat}.txt" if args.profile else None
                rows.append({"run": repeat, **run_on_fresh_control_plane(controller, count, args.workers, profile)})
                print(json.dumps(rows[-1]), flush=True)
    table = summary(rows)
    (RESULTS / "operator.json").write_text(json.dumps({"runs": rows, "summary": table}, indent=2) + "\n")
    print()
    print("Median (lowest-highest) over the runs; each run on a control plane of its own.")
    print(
        "| resources | controller | runs | reconciled | with status | all done | p50 create→children "
        "| p99 create→children | peak RSS | controller CPU | API server CPU | API requests / resource |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in table:
        print(
            f"| {r['resources']} | {r['controller']} | {r['runs']} | {r['reconciled']} | {r['withStatus']} | "
            f"{shown(r['allDoneSeconds'], ' s')} | {shown(r.get('p50ChildrenSeconds'), ' s')} | "
            f"{shown(r.get('p99ChildrenSeconds'), ' s')} | {shown(r['peakRssMiB'], ' MiB')} | "
            f"{shown(r['controllerCpuSeconds'], ' s')} | {shown(r['apiServerCpuSeconds'], ' s')} | "
            f"{shown(r['apiRequestsPerResource'])} |"
        )
    for count in dict.fromkeys(r["resources"] for r in table):
        pair = {r["controller"]: r for r in table if r["resources"] == count}
        if len(pair) == 2 and "p99ChildrenSeconds" in pair["lmaas"] and "p99ChildrenSeconds" in pair["baseline"]:
            ratio = {
                q: pair["lmaas"][key]["median"] / pair["baseline"][key]["median"]
                for q, key in (("p99", "p99ChildrenSeconds"), ("p50", "p50ChildrenSeconds"))
            }
            print(f"{count} resources: lmaas / baseline, medians: p99 {ratio['p99']:.2f}, p50 {ratio['p50']:.2f}")
    if args.profile:
        print("\nProfiles (py-spy; the runs' times are slowed by the sampling):")
        for row in rows:
            print(report(RESULTS / f"profile-{row['controller']}-{row['resources']}-{row['run']}.txt", top=15))
    return 0
