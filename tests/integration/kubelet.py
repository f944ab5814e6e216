"""A stand-in for the kubelet, for a control plane that has none.

The test control plane runs the real API server and controllers but no scheduler and no kubelet,
so pods stay Pending with nobody to run them. Tests play the kubelet here: they bind pods to a
node, move them through Running / Ready / Succeeded / Failed (with exit codes and reasons such as
OOMKilled) by patching pod status, and serve container logs to the API server, exactly the
signals a real kubelet sends. The real Job and Deployment controllers react to them as in a
cluster. A background thread finishes graceful deletions, as a kubelet does once containers stop.
"""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import kubernetes

NODE = "lmaas-test-node"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _binding(pod_name: str) -> dict[str, Any]:
    """The scheduler's decision: the pod runs on this node."""
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod_name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
    }


def _status(
    uid: str, containers: list[tuple[str, str]], phase: str, conditions: list[dict], state: dict, ready: bool
) -> dict[str, Any]:
    """A pod status patch as a kubelet writes it: phase, IPs, conditions and one status per
    container (name, image) in `state`."""
    now = _now()
    return {
        "status": {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": now,
            "conditions": [{**c, "lastTransitionTime": now} for c in conditions],
            "containerStatuses": [
                {
                    "name": name,
                    "image": image,
                    "imageID": f"docker.io/{image}@sha256:{'0' * 64}",
                    "containerID": f"containerd://{uid}-{name}",
                    "ready": ready,
                    "started": "running" in state,
                    "restartCount": 0,
                    "state": state,
                }
                for name, image in containers
            ],
        }
    }


def _running(ready: bool) -> tuple[list[dict], dict]:
    """The conditions and container state of started containers (ready, if `ready`)."""
    flag = "True" if ready else "False"
    return (
        [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": flag},
            {"type": "Ready", "status": flag},
        ],
        {"running": {"startedAt": _now()}},
    )


class Kubelet:
    """Plays the kubelet of one node; the node's log endpoint serves what `set_log` stored."""

    def __init__(self, api: kubernetes.client.ApiClient, cert_file: Path, key_file: Path):
        self.core = kubernetes.client.CoreV1Api(api)
        self._logs: dict[tuple[str, str, str], str] = {}
        self._stop = threading.Event()
        self._server = self._start_log_server(cert_file, key_file)
        self._reaper = threading.Thread(target=self._finish_deletions, name="kubelet-reaper", daemon=True)

    # -- node ----------------------------------------------------------------

    def start(self) -> Kubelet:
        self._register_node()
        self._reaper.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _register_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
        }
        try:
            self.core.create_node(node)
        except kubernetes.client.ApiException as error:
            if error.status != 409:  # a second test session on the same cluster reuses the node
                raise
        self.core.patch_node_status(
            NODE,
            {
                "status": {
                    # InternalIP only: the API server would try a Hostname address first, and none resolves.
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": self._server.server_address[1]}},
                    "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                    "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "played by the tests",
                            "lastHeartbeatTime": _now(),
                            "lastTransitionTime": _now(),
                        }
                    ],
                }
            },
        )

    # -- pods ----------------------------------------------------------------

    def pods(self, namespace: str, selector: str) -> list[Any]:
        return self.core.list_namespaced_pod(namespace, label_selector=selector).items

    def wait_for_pods(self, namespace: str, selector: str, count: int, timeout: float = 30.0) -> list[Any]:
        """The live (not terminating, not finished) pods, once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            live = [
                p
                for p in self.pods(namespace, selector)
                if not p.metadata.deletion_timestamp and p.status.phase in ("Pending", "Running")
            ]
            if len(live) >= count:
                return sorted(live, key=lambda p: p.metadata.name)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(live)}/{count} pods matching {selector} in {namespace}")
            time.sleep(0.2)

    def bind(self, pod) -> None:
        """Schedule the pod onto this node (what a scheduler would do), once."""
        if self.core.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace).spec.node_name:
            return
        # The generated client cannot decode the Binding reply (a Status); the raw reply is enough.
        self.core.create_namespaced_binding(pod.metadata.namespace, _binding(pod.metadata.name), _preload_content=False)

    def run(self, pod, ready: bool = True) -> None:
        """Containers started (and ready, if `ready`)."""
        self.bind(pod)
        self._set_status(pod, "Running", *_running(ready), ready=ready)

    def start_new(self, pod: dict[str, Any]) -> None:
        """A new, unbound pod as a watch delivers it (plain JSON): bound and Running, ready, with
        no read before and no reply decoded (the scale benchmark plays hundreds at once)."""
        meta = pod["metadata"]
        self.core.create_namespaced_binding(meta["namespace"], _binding(meta["name"]), _preload_content=False)
        self.core.patch_namespaced_pod_status(
            meta["name"],
            meta["namespace"],
            _status(
                meta["uid"],
                [(c["name"], c["image"]) for c in pod["spec"]["containers"]],
                "Running",
                *_running(True),
                ready=True,
            ),
            _preload_content=False,
        )

    def succeed(self, pod, message: str = "") -> None:
        self.terminate(pod, exit_code=0, reason="Completed", message=message)

    def terminate(self, pod, exit_code: int, reason: str = "Error", message: str = "") -> None:
        """Containers exited; the pod is Succeeded for exit code 0, Failed otherwise."""
        self.bind(pod)
        state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "message": message,
                "startedAt": _now(),
                "finishedAt": _now(),
            }
        }
        self._set_status(
            pod,
            "Succeeded" if exit_code == 0 else "Failed",
            [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": "False"},
                {"type": "Ready", "status": "False"},
            ],
            state,
            ready=False,
        )

    def unschedulable(self, pod, message: str) -> None:
        self.core.patch_namespaced_pod_status(
            pod.metadata.name,
            pod.metadata.namespace,
            {
                "status": {
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": message,
                            "lastTransitionTime": _now(),
                        }
                    ]
                }
            },
        )

    def waiting(self, pod, reason: str, message: str = "") -> None:
        """Containers that cannot start, e.g. ImagePullBackOff."""
        self.bind(pod)
        self._set_status(
            pod,
            "Pending",
            [{"type": "PodScheduled", "status": "True"}],
            {"waiting": {"reason": reason, "message": message or reason}},
            ready=False,
        )

    def _set_status(self, pod, phase: str, conditions: list[dict], state: dict, ready: bool) -> None:
        self.core.patch_namespaced_pod_status(
            pod.metadata.name,
            pod.metadata.namespace,
            _status(
                pod.metadata.uid, [(c.name, c.image) for c in pod.spec.containers], phase, conditions, state, ready
            ),
        )

    # -- logs ----------------------------------------------------------------

    def set_log(self, pod, container: str, text: str) -> None:
        """What `kubectl logs` (and the operator) will read from this container."""
        self._logs[(pod.metadata.namespace, pod.metadata.name, container)] = text

    def _start_log_server(self, cert_file: Path, key_file: Path) -> http.server.ThreadingHTTPServer:
        logs = self._logs

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                url = urllib.parse.urlparse(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404)
                    return
                text = logs.get(tuple(parts[1:]), "")
                tail = urllib.parse.parse_qs(url.query).get("tailLines")
                if tail:
                    text = "".join(text.splitlines(keepends=True)[-int(tail[0]) :])
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, name="kubelet-logs", daemon=True).start()
        return server

    # -- deletions -------------------------------------------------------------

    def _finish_deletions(self) -> None:
        """Pods bound to this node wait for their kubelet to confirm deletion; confirm it."""
        while not self._stop.wait(0.5):
            try:
                # Plain JSON, not model classes: the scale benchmark runs this next to what it measures.
                reply = self.core.list_pod_for_all_namespaces(
                    field_selector=f"spec.nodeName={NODE}", _preload_content=False
                )
                for pod in json.loads(reply.data)["items"]:
                    meta = pod["metadata"]
                    if not meta.get("deletionTimestamp"):
                        continue
                    if meta.get("finalizers") and pod["status"].get("phase") not in ("Succeeded", "Failed"):
                        # Containers killed: a terminal phase, which the Job controller waits
                        # for before it lifts its job-tracking finalizer from an orphaned pod.
                        self.core.patch_namespaced_pod_status(
                            meta["name"],
                            meta["namespace"],
                            {"status": {"phase": "Failed", "reason": "Terminated", "message": "deleted"}},
                        )
                    self.core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0)
            except kubernetes.client.ApiException as error:
                if error.status not in (404, 409):
                    raise
            except Exception:
                if self._stop.is_set():  # the API server is going away with the session
                    return
                raise
