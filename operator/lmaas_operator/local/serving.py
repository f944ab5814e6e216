"""ModelServices, served locally: the rendered Deployment's pod template, one local process per
replica, each on its own port of 127.0.0.1, readiness probed on the same endpoint as in a cluster.

The ModelService's status comes from its `compute_status`, fed with the Deployment's status that
the local replicas give; `status.url` is the first replica's local URL. There is no autoscaler
here: an autoscaled ModelService runs `autoscaling.minReplicas` replicas. A replica that exits
before it was ever ready fails the ModelService with its last words; one that exits later is
started again, as a Deployment would.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Any

from lmaas_api import contract
from lmaas_api.clock import utc_now
from lmaas_api.resource import CustomResource

from .. import jobs
from ..conditions import with_phase
from ..modelservice import builders
from ..modelservice import status as service_status
from ..references import Resolution, resolve_model
from .kubelet import LocalPod
from .store import Store
from .workloads import LOCAL_CONFIG, OnStatus, unresolved

PROBE_TIMEOUT = 1.0


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def next_free_port(wanted: int, taken: set[int]) -> int:
    port = wanted
    while port in taken or not port_is_free(port):
        port += 1
    taken.add(port)
    return port


class LocalService:
    """One ModelService: start its replicas, then `step()` until stopped."""

    def __init__(
        self, body: dict[str, Any], store: Store, on_status: OnStatus, ports: set[int], base_port: int | None = None
    ):
        self.body = body
        self.cr = CustomResource.from_body(body)
        self.store = store
        self.on_status = on_status
        self.resolution: Resolution = resolve_model(self.cr.spec.model, store.lookup, ("ModelService", self.cr.name))
        self.replicas: list[tuple[LocalPod, int]] = []
        self._ever_ready: set[int] = set()
        self._restarts = 0
        self.failure: tuple[str, str] | None = None
        self._deployment: dict[str, Any] | None = None
        if self.resolution.state == "ready":
            children = builders.render_children(self.cr, LOCAL_CONFIG, self.resolution)
            (self._deployment,) = [c for c in children if c["kind"] == "Deployment"]
            spec = self.cr.spec
            count = spec.autoscaling.min_replicas if spec.autoscaling else spec.replicas
            for number in range(count):
                port = next_free_port((base_port or spec.port) + number, ports)
                name = f"{self.cr.name}-{number}"
                pod = LocalPod(
                    name,
                    self._deployment["spec"]["template"],
                    store.pod_dir("ModelService", self.cr.name, name),
                    store.volumes,
                    store.secret,
                    extra_args=["--host", "127.0.0.1", "--port", str(port)],
                )
                self.replicas.append((pod, port))

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for _, port in self.replicas]

    def start(self) -> None:
        for pod, _ in self.replicas:
            pod.start()
        self.step()

    def step(self) -> dict[str, Any]:
        previous = dict(self.body.get("status") or {})
        ready = 0
        for number, (pod, port) in enumerate(self.replicas):
            if pod.config_error:
                self.failure = ("CreateContainerConfigError", f"pod {pod.name}: {pod.config_error}")
            elif pod.poll() is not None:
                if number not in self._ever_ready:
                    self.failure = ("ReplicaFailed", _last_words(pod))
                else:
                    self._restarts += 1
                    pod.start()
            elif _probe(port):
                ready += 1
                self._ever_ready.add(number)
        status = self._status(previous, ready)
        if status != previous:
            self.body = {**self.body, "status": status}
            self.on_status(self.body)
        return status

    def _status(self, previous: dict[str, Any], ready: int) -> dict[str, Any]:
        deployment = None
        if self._deployment is not None:
            count = len(self.replicas)
            deployment = {
                **self._deployment,
                "metadata": {**self._deployment["metadata"], "generation": 1},
                "spec": {**self._deployment["spec"], "replicas": count},
                "status": {
                    "observedGeneration": 1,
                    "replicas": count,
                    "updatedReplicas": count,
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                },
            }
        pods = [pod.status() for pod, _ in self.replicas]
        status = service_status.compute_status(self.cr, self.resolution, deployment, pods, previous, utc_now())
        if self.resolution.state == "waiting":
            reason, message = unresolved("ModelService", self.resolution, self.store)
            self.failure = (reason, message)
        if self.failure:
            status = self._with_phase(status, previous, "Failed", *self.failure)
        if self.replicas:
            status["url"] = self.urls[0]
        return status

    def _with_phase(
        self, status: dict[str, Any], previous: dict[str, Any], phase: str, reason: str, message: str
    ) -> dict[str, Any]:
        return with_phase(
            status,
            previous.get("conditions"),
            service_status.CONDITION_TYPES,
            phase,
            reason,
            message,
            self.cr.generation,
            utc_now(),
        )

    def stop(self, reason: str = "Stopped", message: str = "stopped by Ctrl-C or SIGTERM") -> None:
        for pod, _ in self.replicas:
            pod.stop()
        if not self.failure:
            previous = dict(self.body.get("status") or {})
            status = self._with_phase(self._status(previous, 0), previous, "Degraded", reason, message)
            self.body = {**self.body, "status": status}
            self.on_status(self.body)


def _probe(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}{contract.READINESS_PATH}", timeout=PROBE_TIMEOUT
        ) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _last_words(pod: LocalPod) -> str:
    status = pod.status()["status"]["containerStatuses"][0]["state"].get("terminated") or {}
    message = jobs.worker_message(status) if status else ""
    return f"replica {pod.name} exited {pod.exit_code}" + (f": {message}" if message else "")
