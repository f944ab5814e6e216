"""The serving worker's settings: command-line flags, else the ModelService in --config, else defaults.

    model_dir      --model-dir, else $LMAAS_INPUT_DIR (the CLI fills the default)
    name           --name, else the ModelService's metadata.name, else the artifact's name
                   (model.json `name`, else its producer's name, else the directory's name)
    host, port     --host (default 0.0.0.0), --port, else spec.port, else 8080
    max_batch_size --max-batch-size, else spec.batching.maxBatchSize, else 32 (1 disables batching)
    max_latency_ms --max-latency-ms, else spec.batching.maxLatencyMs, else 5
    threads        --threads, else spec.threads, else the CPUs available to this process
                   (its affinity mask, capped by a cgroup CPU quota when one is set)
    auth_token     $LMAAS_AUTH_TOKEN only (never a flag, never logged); unset or empty: no auth
    artifact_code  --trust-artifact-code, else spec.trustArtifactCode, else false: which user code
                   the artifact's card may name (`lmaas_worker.models`; false: builtin models only)

The model's own name is resolved when the artifact is read (`resolve_model_name`), since it may
come from the artifact.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_api.errors import ConfigError
from lmaas_api.resource import read_resource
from lmaas_api.spec import ArtifactCodePolicy, ModelServiceSpec

DEFAULT_PORT = 8080
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_LATENCY_MS = 5.0
DEFAULT_HOST = "0.0.0.0"
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest request body accepted; a larger one gets 413 before it is read."""
DRAIN_TIMEOUT_S = 25.0
"""On SIGTERM, the longest wait for in-flight requests (Kubernetes' default grace period is 30 s)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ServeConfig:
    model_dir: Path
    name: str | None
    """None: take the artifact's name."""
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS
    threads: int = 1
    auth_token: str | None = field(default=None, repr=False)
    source: str | None = None
    """Where the ModelService says the model comes from (`uri`, or `TrainJob/NAME`), for model info."""
    max_body_bytes: int = MAX_BODY_BYTES
    drain_timeout_s: float = DRAIN_TIMEOUT_S
    artifact_code: ArtifactCodePolicy = ArtifactCodePolicy()

    def describe(self) -> str:
        """For the log: every setting but the token, which is only said to be set or not."""
        return (
            f"model_dir={self.model_dir} name={self.name or '(from the artifact)'} host={self.host} "
            f"port={self.port} max_batch_size={self.max_batch_size} max_latency_ms={self.max_latency_ms:g} "
            f"threads={self.threads} auth={'bearer token' if self.auth_token else 'none'} "
            f"trust_artifact_code={str(self.artifact_code.trust_all).lower()}"
        )


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (a pod's limit)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def resolve_config(
    config_path: str | os.PathLike | None = None,
    model_dir: str | os.PathLike | None = None,
    host: str | None = None,
    port: int | None = None,
    name: str | None = None,
    max_batch_size: int | None = None,
    max_latency_ms: float | None = None,
    threads: int | None = None,
    trust_artifact_code: bool | None = None,
    environ: dict[str, str] | None = None,
) -> ServeConfig:
    env = os.environ if environ is None else environ
    resource = read_resource(config_path, "ModelService") if config_path else None
    spec: ModelServiceSpec | None = resource.spec if resource is not None else None
    model_dir = model_dir or env.get(contract.INPUT_DIR_ENV)
    if not model_dir:
        raise ConfigError(f"--model-dir (${contract.INPUT_DIR_ENV})", "no model artifact directory given")
    name = name or (resource.name if resource is not None else None) or None
    if name is not None and not _NAME.match(name):
        raise ConfigError(
            "--name",
            f"{name!r} cannot be a model name in a URL: use letters, digits, '.', '_' "
            f"and '-', starting with a letter or digit, at most 128 characters",
        )
    port = _first(port, spec and spec.port, DEFAULT_PORT)
    batch = _first(max_batch_size, spec and spec.batching.max_batch_size, DEFAULT_MAX_BATCH_SIZE)
    latency = _first(max_latency_ms, spec and spec.batching.max_latency_ms, DEFAULT_MAX_LATENCY_MS)
    thread_count = _first(threads, spec and spec.threads)
    if thread_count is None:
        thread_count = available_cpus()
    if not 0 <= port <= 65535:
        raise ConfigError("--port", f"must be 0..65535 (0: any free port), got {port}")
    if batch < 1:
        raise ConfigError("--max-batch-size", f"must be at least 1 (1 disables batching), got {batch}")
    if not (latency >= 0 and math.isfinite(latency)):
        raise ConfigError("--max-latency-ms", f"must be a finite number >= 0, got {latency}")
    if thread_count < 1:
        raise ConfigError("--threads", f"must be at least 1, got {thread_count}")
    artifact_code = spec.artifact_code if spec is not None else ArtifactCodePolicy()
    if trust_artifact_code is not None:
        artifact_code = ArtifactCodePolicy(trust_all=trust_artifact_code)
    source = None
    if spec is not None:
        reference = spec.model
        source = reference.uri or (f"{reference.producer[0]}/{reference.producer[1]}" if reference.producer else None)
    return ServeConfig(
        model_dir=Path(model_dir),
        name=name,
        host=host or DEFAULT_HOST,
        port=int(port),
        max_batch_size=int(batch),
        max_latency_ms=float(latency),
        threads=int(thread_count),
        auth_token=env.get(contract.AUTH_TOKEN_ENV) or None,
        source=source,
        artifact_code=artifact_code,
    )


def resolve_model_name(configured: str | None, card: ModelCard, model_dir: Path) -> str:
    """The configured name, else the artifact's own, else its producer's, else the directory's."""
    if configured:
        return configured
    directory = model_dir.resolve()
    fallback = directory.parent.name if directory.name == contract.ARTIFACT_SUBDIR else directory.name
    for candidate in (card.name, card.producer and card.producer.name, fallback):
        if isinstance(candidate, str) and candidate:
            cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", candidate).strip("-._")[:128]
            if cleaned:
                return cleaned
    return "model"


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None
