"""The operator's one configuration object, read from LMAAS_* environment variables.

Tests build an OperatorConfig directly and hand it to kopf through `memo`; product code never
asks whether it is under test.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, fields

from lmaas_api.errors import ConfigError


def _random_priority() -> int:
    # kopf peering: the replica with the highest priority handles resources and the others
    # stand by; equal priorities would make every replica pause, so each process draws its own.
    return random.randint(1, 32767)


@dataclass(frozen=True)
class OperatorConfig:
    namespace: str = ""
    """LMAAS_NAMESPACE: the one namespace to watch; empty watches the whole cluster."""
    worker_image: str = "lmaas/worker:0.1.0"
    """LMAAS_WORKER_IMAGE: image of training, compression and serving pods unless a CR sets spec.image."""
    artifact_claim: str = "lmaas-artifacts"
    """LMAAS_ARTIFACT_CLAIM: PersistentVolumeClaim for outputs of CRs that set no spec.output."""
    peering: str = "lmaas"
    """LMAAS_PEERING: kopf peering object used for leader election; empty runs standalone."""
    peering_priority: int = field(default_factory=_random_priority)
    """LMAAS_PEERING_PRIORITY: this replica's peering priority (default: random)."""
    peering_lifetime_seconds: int = 60
    """LMAAS_PEERING_LIFETIME_SECONDS: how long a replica's leadership record lasts without renewal,
    so how soon a standby takes over from a leader that died without a word (SIGKILL, a lost node)."""
    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"
    """LMAAS_LIVENESS_ENDPOINT: where kopf answers liveness probes; empty disables it."""
    metrics_address: str = "0.0.0.0:9090"
    """LMAAS_METRICS_ADDRESS: HOST:PORT of the Prometheus /metrics endpoint; empty disables it."""
    max_workers: int = 16
    """LMAAS_MAX_WORKERS: threads running handlers at once (each one waits on API calls)."""
    watch_timeout_seconds: int = 300
    """LMAAS_WATCH_TIMEOUT_SECONDS: server-side timeout of each watch request."""
    log_level: str = "INFO"
    """LMAAS_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR."""
    log_format: str = "json"
    """LMAAS_LOG_FORMAT: json (one object per line) or plain."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> OperatorConfig:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            variable = f"LMAAS_{f.name.upper()}"
            if variable not in env:
                continue
            raw = env[variable]
            if f.type == "int":
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ConfigError(variable, f"must be an integer, got {raw!r}") from None
            else:
                values[f.name] = raw
        config = cls(**values)
        if config.metrics_address and not config.metrics_address.rpartition(":")[2].isdigit():
            raise ConfigError("LMAAS_METRICS_ADDRESS", f"must be HOST:PORT, got {config.metrics_address!r}")
        if config.peering_lifetime_seconds < 15:
            raise ConfigError(
                "LMAAS_PEERING_LIFETIME_SECONDS",
                f"must be at least 15 (renewals come 5-10 s before it ends), got {config.peering_lifetime_seconds}",
            )
        if config.max_workers < 1:
            raise ConfigError("LMAAS_MAX_WORKERS", f"must be at least 1, got {config.max_workers}")
        if config.log_format not in ("json", "plain"):
            raise ConfigError("LMAAS_LOG_FORMAT", f"must be json or plain, got {config.log_format!r}")
        if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LMAAS_LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {config.log_level!r}")
        return config
