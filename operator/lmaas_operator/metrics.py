"""The operator's Prometheus metrics: reconciles, errors and durations per kind, resources per phase.

Every reconcile and status handler is wrapped by `measured(kind, handler)`: it counts the call, times it,
counts an exception by its type (and re-raises it: kopf retries and reports it), and remembers
the phase the handler wrote (or the resource already had). `lmaas_operator_resources` is computed
at scrape time from those phases; a deleted resource is forgotten (`forget`). The endpoint is
LMAAS_METRICS_ADDRESS (default 0.0.0.0:9090); an empty value disables it.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
RECONCILES = Counter(
    "lmaas_operator_reconciles_total", "Handler calls, by kind and handler.", ["kind", "handler"], registry=REGISTRY
)
ERRORS = Counter(
    "lmaas_operator_reconcile_errors_total",
    "Handler calls that raised, by kind, handler and error.",
    ["kind", "handler", "error"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "lmaas_operator_reconcile_duration_seconds",
    "Time in handlers, by kind and handler.",
    ["kind", "handler"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class PhaseCollector(Collector):
    """lmaas_operator_resources{kind,phase}: how many resources this replica last saw in each phase.

    A deleted resource's uid is remembered (the latest GONE_KEPT of them), so that a handler call
    still under way when it was deleted does not record it again."""

    GONE_KEPT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[tuple[str, str, str], str] = {}
        self._gone: dict[str, None] = {}  # uids, oldest first

    def record(self, kind: str, namespace: str, name: str, uid: str | None, phase: str) -> None:
        with self._lock:
            if uid not in self._gone:
                self._phases[(kind, namespace, name)] = phase

    def forget(self, kind: str, namespace: str, name: str, uid: str | None) -> None:
        with self._lock:
            self._phases.pop((kind, namespace, name), None)
            if uid:
                self._gone[uid] = None
                if len(self._gone) > self.GONE_KEPT:
                    del self._gone[next(iter(self._gone))]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            counts = Tally((kind, phase) for (kind, _, _), phase in self._phases.items())
        family = GaugeMetricFamily(
            "lmaas_operator_resources", "Resources by kind and phase, as last reconciled.", labels=["kind", "phase"]
        )
        for (kind, phase), count in sorted(counts.items()):
            family.add_metric([kind, phase], count)
        yield family


PHASES = PhaseCollector()
REGISTRY.register(PHASES)


def _phase_seen(kwargs: dict[str, Any]) -> str | None:
    patch, body = kwargs.get("patch") or {}, kwargs.get("body") or {}
    written = (patch.get("status") or {}).get("phase") if hasattr(patch, "get") else None
    return written or (body.get("status") or {}).get("phase") or "Pending"


def measured(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Count, time and phase-track a kopf handler under the `handler` label `name` (sync; kopf
    calls handlers with keywords only)."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            RECONCILES.labels(kind, name).inc()
            started = time.perf_counter()
            try:
                result = handler(*args, **kwargs)
            except Exception as error:
                ERRORS.labels(kind, name, type(error).__name__).inc()
                raise
            finally:
                DURATION.labels(kind, name).observe(time.perf_counter() - started)
            body = kwargs.get("body") or {}
            meta = body.get("metadata") or {}
            if meta.get("name"):
                PHASES.record(kind, meta.get("namespace") or "", meta["name"], meta.get("uid"), _phase_seen(kwargs))
            return result

        return run

    return wrap


def forget(kind: str, namespace: str, name: str, uid: str | None) -> None:
    PHASES.forget(kind, namespace, name, uid)


def serve(address: str):
    """Start the /metrics endpoint on HOST:PORT in a thread; returns the server (`.shutdown()`)."""
    host, _, port = address.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)
    return server
