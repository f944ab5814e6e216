"""The operator at scale on the test control plane: N custom resources applied at once.

For each N (default 200 and 1,000): a fresh namespace; N resources of the three kinds (a third
each, ModelServices and CompressJobs reading a `uri:` model so that all have children at once)
created by a pool of client threads as fast as the API server takes them; a watch per child kind
notes when each child appears; a fast kubelet stand-in binds every new pod and marks it Running.
Reported: time until every resource has all its children and a status, p50/p99 from a resource's
creation (the client's create returning) to its last child existing, the operator's peak RSS
(VmHWM of the `lmaas operator` process), and API server requests per resource (all clients: the
operator, the controllers, this load generator and the stand-in; from apiserver_request_total).

    python -m bench.operator [--counts 200 1000] [--workers N]
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

from lmaas_operator.api.crds import GROUP, VERSION, load_crds
from lmaas_operator.local.kubelet import free_port
from tests.cluster import TestCluster
from tests.integration.kubelet import Kubelet
from tests.integration.operators import CHILDREN, resources, scrape

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
            for event in kubernetes.watch.Watch().stream(list_function, *args, deserialize=False,
                                                        timeout_seconds=30, **kwargs):
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
        core, batch, apps = (kubernetes.client.CoreV1Api(api), kubernetes.client.BatchV1Api(api),
                             kubernetes.client.AppsV1Api(api))
        lists = {"service": core.list_namespaced_service,
                 "job": batch.list_namespaced_job, "deployment": apps.list_namespaced_deployment}
        for kind, list_function in lists.items():
            threading.Thread(target=self._watch, args=(kind, list_function, namespace), daemon=True).start()
        custom = kubernetes.client.CustomObjectsApi(api)
        for kind, plural in PLURALS.items():
            threading.Thread(target=self._watch_writes, args=(kind, custom, plural, namespace), daemon=True).start()

    def _watch_writes(self, kind, custom, plural, namespace) -> None:
        """When the controller first wrote to each resource (its first change after creation), and
        which have a status phase (from the watch, not by listing them all again and again)."""
        for event in raw_watch(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural,
                               stop=self._stop, what=plural):
            key = (kind, event["object"]["metadata"]["name"])
            if event["type"] == "MODIFIED":
                self.seen.setdefault(key, time.monotonic())
            if (event["object"].get("status") or {}).get("phase"):
                self.with_status.add(key)

    def _watch(self, kind, list_function, namespace) -> None:
        for event in raw_watch(list_function, namespace, stop=self._stop, what=f"{kind}s",
                               label_selector="app.kubernetes.io/managed-by=lmaas-operator"):
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


def gone(core: kubernetes.client.CoreV1Api, namespace: str, timeout: float = 300) -> None:
    """Wait until a deleted namespace and everything in it is gone: the namespace controller's
    deletions would otherwise load the API server during the next run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            left = core.read_namespace(namespace)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(1)
    waiting = "; ".join(c.message for c in left.status.conditions or [] if c.status == "True")
    raise TimeoutError(f"namespace {namespace} still there {timeout:.0f} s after its deletion: {waiting}")


def start_controller(controller: str, cluster: TestCluster, namespace: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`lmaas operator` (namespaced, no peering, its metrics on a free port), or the bare
    controller of bench/operator/baseline.py; the metrics URL or ''."""
    metrics_port = free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "LMAAS_PEERING": "", "LMAAS_LIVENESS_ENDPOINT": "",
           "LMAAS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}", "LMAAS_LOG_FORMAT": "plain",
           "LMAAS_LOG_LEVEL": "WARNING", "LMAAS_NAMESPACE": namespace}
    if controller == "lmaas":
        command, url = [str(Path(sys.executable).parent / "lmaas"), "operator"], f"http://127.0.0.1:{metrics_port}/metrics"
    else:
        command, url = [sys.executable, "-m", "bench.operator.baseline", "--namespace", namespace], ""
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return process, url


def run_once(cluster: TestCluster, api, kubelet: Kubelet, controller: str, count: int, workers: int, log_dir: Path) -> dict:
    core = kubernetes.client.CoreV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace = f"scale-{controller}-{count}-{uuid.uuid4().hex[:4]}"
    core.create_namespace({"metadata": {"name": namespace}})
    while not core.list_namespaced_service_account(namespace).items:
        time.sleep(0.2)
    process, metrics_url = start_controller(controller, cluster, namespace, log_dir / f"{controller}-{count}.log")
    time.sleep(3)  # the controller's watches are up before the burst
    watch = ChildWatch(api, namespace)
    stop = threading.Event()
    player = threading.Thread(target=stand_in_kubelet, args=(kubelet, namespace, stop), daemon=True)
    player.start()
    docs = resources(count)
    requests_before = api_requests(cluster)
    processes = {"controller": process.pid, "benchmark": os.getpid(), **cluster.pids()}
    cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    created: dict[tuple[str, str], float] = {}

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
    requests = {key: round(value / count, 2) for key, value in sorted(requests.items(), key=lambda kv: -kv[1])
                if value >= count / 10}
    stop.set()
    watch.stop()
    core.delete_namespace(namespace)
    gone(core, namespace)  # with the controller still running, as in a cluster
    process.terminate()
    process.wait(timeout=60)
    return {
        "controller": controller, "resources": count, "reconciled": len(latencies), "withStatus": len(statuses),
        "createBurstSeconds": round(burst, 1), "allDoneSeconds": round(finished, 1),
        "p50ChildrenSeconds": round(statistics.median(latencies), 2) if latencies else None,
        "p99ChildrenSeconds": round(percentile(latencies, 99), 2) if latencies else None,
        "p50FirstWriteSeconds": round(statistics.median(first_write), 2) if first_write else None,
        "p99FirstWriteSeconds": round(percentile(first_write, 99), 2) if first_write else None,
        "peakRssMiB": round(rss), "cpuSeconds": cpu,
        "apiRequestsPerResource": round(sum(requests.values()), 1), "apiRequestsPerResourceBy": requests,
        "meanHandlerSeconds": handlers,
    }


def summary(rows: list[dict]) -> list[dict]:
    """Medians over the repeats of each (size, controller)."""
    table = []
    for count in dict.fromkeys(r["resources"] for r in rows):
        for controller in CONTROLLERS:
            runs = [r for r in rows if r["resources"] == count and r["controller"] == controller]
            if not runs:
                continue

            def median(key, runs=runs):
                values = [r[key] for r in runs if r[key] is not None]
                return round(statistics.median(values), 2) if values else None
            table.append({
                "resources": count, "controller": controller, "runs": len(runs),
                "reconciled": min(r["reconciled"] for r in runs), "withStatus": min(r["withStatus"] for r in runs),
                **{key: median(key) for key in ("allDoneSeconds", "p50ChildrenSeconds", "p99ChildrenSeconds",
                                                "peakRssMiB", "apiRequestsPerResource")},
                "p99Range": [min(r["p99ChildrenSeconds"] for r in runs), max(r["p99ChildrenSeconds"] for r in runs)],
                "controllerCpuSeconds": round(statistics.median(r["cpuSeconds"]["controller"] for r in runs), 1),
                "apiServerCpuSeconds": round(statistics.median(r["cpuSeconds"]["kube-apiserver"] for r in runs), 1),
            })
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each controller at each size (alternating)")
    parser.add_argument("--controllers", nargs="+", choices=CONTROLLERS, default=list(CONTROLLERS))
    parser.add_argument("--workers", type=int, default=8, help="client threads creating the resources")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    with TestCluster() as cluster:
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        api.configuration.connection_pool_maxsize = 32
        # The node, its log endpoint and its deletions; stand_in_kubelet starts the pods with it.
        kubelet = Kubelet(api, cluster.dir / "pki" / "apiserver.crt", cluster.dir / "pki" / "apiserver.key").start()
        try:
            for count in args.counts:
                for repeat in range(args.repeats):
                    # Alternate which goes first, so that neither always meets a fresher cluster.
                    for controller in args.controllers[::-1 if repeat % 2 else 1]:
                        print(f"{count} resources, {controller} ...", flush=True)
                        rows.append(run_once(cluster, api, kubelet, controller, count, args.workers, RESULTS))
                        print(json.dumps(rows[-1]), flush=True)
        finally:
            kubelet.stop()
    table = summary(rows)
    (RESULTS / "operator.json").write_text(json.dumps({"runs": rows, "summary": table}, indent=2) + "\n")
    print()
    print("| resources | controller | runs | reconciled | with status | all done | p50 create→children | p99 (range) "
          "| peak RSS | controller CPU | API server CPU | API requests / resource |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in table:
        print(f"| {r['resources']} | {r['controller']} | {r['runs']} | {r['reconciled']} | {r['withStatus']} | "
              f"{r['allDoneSeconds']} s | {r['p50ChildrenSeconds']} s | {r['p99ChildrenSeconds']} s "
              f"({r['p99Range'][0]}-{r['p99Range'][1]}) | {r['peakRssMiB']} MiB | {r['controllerCpuSeconds']} s | "
              f"{r['apiServerCpuSeconds']} s | {r['apiRequestsPerResource']} |")
    for count in dict.fromkeys(r["resources"] for r in table):
        pair = {r["controller"]: r for r in table if r["resources"] == count}
        if len(pair) == 2 and pair["baseline"]["p99ChildrenSeconds"]:
            print(f"{count} resources: p99 lmaas / baseline = "
                  f"{pair['lmaas']['p99ChildrenSeconds'] / pair['baseline']['p99ChildrenSeconds']:.2f}, "
                  f"p50 {pair['lmaas']['p50ChildrenSeconds'] / pair['baseline']['p50ChildrenSeconds']:.2f}")
    return 0
