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
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes
from prometheus_client.parser import text_string_to_metric_families

from lmaas_operator.api.crds import GROUP, VERSION, load_crds
from lmaas_operator.local.kubelet import free_port
from tests.cluster import TestCluster
from tests.integration.kubelet import Kubelet
from tests.integration.operators import CHILDREN, resources

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
PLURALS = {kind: crd.plural for kind, crd in load_crds().items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def api_requests(cluster: TestCluster) -> float:
    text = cluster.request("GET", "/metrics", accept="text/plain")
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def handler_seconds(url: str) -> dict[str, float]:
    """Mean time in each create/status handler, from the operator's own duration histogram."""
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    sums, counts = {}, {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            handler = sample.labels.get("handler")
            if sample.name == "lmaas_operator_reconcile_duration_seconds_sum":
                sums[handler] = sample.value
            elif sample.name == "lmaas_operator_reconcile_duration_seconds_count":
                counts[handler] = sample.value
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


class ChildWatch:
    """When each child (by kind and name) was first seen, from one watch per child kind."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str):
        self.seen: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        core, batch, apps = (kubernetes.client.CoreV1Api(api), kubernetes.client.BatchV1Api(api),
                             kubernetes.client.AppsV1Api(api))
        lists = {"configmap": core.list_namespaced_config_map, "service": core.list_namespaced_service,
                 "job": batch.list_namespaced_job, "deployment": apps.list_namespaced_deployment}
        for kind, list_function in lists.items():
            threading.Thread(target=self._watch, args=(kind, list_function, namespace), daemon=True).start()
        custom = kubernetes.client.CustomObjectsApi(api)
        for kind, plural in PLURALS.items():
            threading.Thread(target=self._watch_finalizers, args=(kind, custom, plural, namespace), daemon=True).start()

    def _watch_finalizers(self, kind, custom, plural, namespace) -> None:
        """When the operator first touched each resource: kopf's finalizer, its first write."""
        while not self._stop.is_set():
            try:
                for event in kubernetes.watch.Watch().stream(custom.list_namespaced_custom_object, GROUP, VERSION,
                                                            namespace, plural, timeout_seconds=30):
                    body = event["object"]
                    if body["metadata"].get("finalizers"):
                        self.seen.setdefault((kind, body["metadata"]["name"]), time.monotonic())
                    if self._stop.is_set():
                        return
            except (kubernetes.client.ApiException, OSError) as error:
                print(f"  (watch of {plural} restarted: {error})", file=sys.stderr)

    def _watch(self, kind, list_function, namespace) -> None:
        while not self._stop.is_set():
            try:
                for event in kubernetes.watch.Watch().stream(
                        list_function, namespace, label_selector="app.kubernetes.io/managed-by=lmaas-operator",
                        timeout_seconds=30):
                    self.seen.setdefault((kind, event["object"].metadata.name), time.monotonic())
                    if self._stop.is_set():
                        return
            except (kubernetes.client.ApiException, OSError) as error:  # restarted; say why
                print(f"  (watch of {kind}s restarted: {error})", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()


def stand_in_kubelet(kubelet: Kubelet, namespace: str, stop: threading.Event) -> None:
    """Bind and run every new pod of the namespace, once."""
    done: set[str] = set()
    while not stop.is_set():
        for pod in kubelet.core.list_namespaced_pod(namespace).items:
            if pod.metadata.name in done:
                continue
            try:
                kubelet.run(pod)
                done.add(pod.metadata.name)
            except kubernetes.client.ApiException:
                pass  # deleted or changed meanwhile: the next round sees it again
        stop.wait(0.5)


def run_once(cluster: TestCluster, api, kubelet: Kubelet, count: int, workers: int, log_dir: Path) -> dict:
    core = kubernetes.client.CoreV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    namespace = f"scale-{count}-{uuid.uuid4().hex[:4]}"
    core.create_namespace({"metadata": {"name": namespace}})
    while not core.list_namespaced_service_account(namespace).items:
        time.sleep(0.2)
    metrics_port = free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "LMAAS_PEERING": "", "LMAAS_LIVENESS_ENDPOINT": "",
           "LMAAS_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}", "LMAAS_LOG_FORMAT": "plain",
           "LMAAS_LOG_LEVEL": "WARNING", "LMAAS_NAMESPACE": namespace}
    operator = subprocess.Popen([str(Path(sys.executable).parent / "lmaas"), "operator"], env=env,
                                stdout=(log_dir / f"operator-{count}.log").open("w"), stderr=subprocess.STDOUT)
    time.sleep(3)  # the operator's watches are up before the burst
    watch = ChildWatch(api, namespace)
    stop = threading.Event()
    player = threading.Thread(target=stand_in_kubelet, args=(kubelet, namespace, stop), daemon=True)
    player.start()
    docs = resources(count)
    requests_before = api_requests(cluster)
    cpu_before = cpu_seconds(operator.pid)
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
    statuses: set[tuple[str, str]] = set()
    while time.monotonic() < deadline:
        if len(statuses) < count:
            for kind, plural in PLURALS.items():
                for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
                    if (item.get("status") or {}).get("phase"):
                        statuses.add((kind, item["metadata"]["name"]))
        if len(statuses) == count and all(children_done(d) for d in docs):
            break
        time.sleep(1)
    finished = time.monotonic() - started
    latencies = [children_done(d) - created[(d["kind"], d["metadata"]["name"])] for d in docs if children_done(d)]
    first_touch = [watch.seen[key] - created[key] for key in created if key in watch.seen]
    rss = peak_rss_mib(operator.pid)
    handlers = handler_seconds(f"http://127.0.0.1:{metrics_port}/metrics")
    cpu = cpu_seconds(operator.pid) - cpu_before
    requests = api_requests(cluster) - requests_before
    stop.set()
    watch.stop()
    operator.terminate()
    operator.wait(timeout=60)
    core.delete_namespace(namespace)
    return {
        "resources": count, "reconciled": len(latencies), "withStatus": len(statuses),
        "createBurstSeconds": round(burst, 1), "allDoneSeconds": round(finished, 1),
        "p50ChildrenSeconds": round(statistics.median(latencies), 2) if latencies else None,
        "p99ChildrenSeconds": round(percentile(latencies, 99), 2) if latencies else None,
        "p50FirstTouchSeconds": round(statistics.median(first_touch), 2) if first_touch else None,
        "p99FirstTouchSeconds": round(percentile(first_touch, 99), 2) if first_touch else None,
        "operatorPeakRssMiB": round(rss), "operatorCpuSeconds": round(cpu, 1),
        "apiRequestsPerResource": round(requests / count, 1),
        "meanHandlerSeconds": handlers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--workers", type=int, default=8, help="client threads creating the resources")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    with TestCluster() as cluster:
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        api.configuration.connection_pool_maxsize = 32
        kubelet = Kubelet(api, cluster.dir / "pki" / "apiserver.crt", cluster.dir / "pki" / "apiserver.key").start()
        try:
            for count in args.counts:
                print(f"{count} resources ...", flush=True)
                rows.append(run_once(cluster, api, kubelet, count, args.workers, RESULTS))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            kubelet.stop()
    (RESULTS / "operator.json").write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print("| resources | reconciled | with status | all done | p50 create→children | p99 | operator peak RSS "
          "| operator CPU | API requests / resource |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['resources']} | {r['reconciled']} | {r['withStatus']} | {r['allDoneSeconds']} s | "
              f"{r['p50ChildrenSeconds']} s | {r['p99ChildrenSeconds']} s | {r['operatorPeakRssMiB']} MiB | "
              f"{r['operatorCpuSeconds']} s | {r['apiRequestsPerResource']} |")
    return 0
