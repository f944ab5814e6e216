"""Model references between resources: a consumer waits for its producer's artifact.

`resolve_model` is pure: it looks producers up through a function, so the handlers feed it from
kopf's in-memory indexes and the local runner from its own state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from lmaas_api.spec import ModelReference

Lookup = Callable[[str, str], dict[str, Any] | None]
"""(kind, name) → the producer as stored (with status), or None if it does not exist."""

MAX_CHAIN = 32


@dataclass(frozen=True)
class Resolution:
    state: Literal["ready", "waiting", "failed"]
    reason: str
    message: str
    uri: str | None = None
    producer: str | None = None
    """KIND/NAME of the producer, if the model comes from one."""
    created_at: str | None = None
    """When the producer wrote the artifact: a newer one rolls consumers forward."""


def resolve_model(ref: ModelReference, lookup: Lookup, consumer: tuple[str, str]) -> Resolution:
    """Where `consumer` (kind, name) gets its model, or why it cannot yet."""
    if ref.uri:
        return Resolution("ready", "DirectURI", f"serving {ref.uri}", uri=ref.uri)
    kind, name = ref.producer
    producer = f"{kind}/{name}"
    cycle = _cycle(kind, name, lookup, consumer)
    if cycle:
        return Resolution(
            "failed", "ReferenceCycle", f"model references form a cycle: {' -> '.join(cycle)}", producer=producer
        )
    body = lookup(kind, name)
    if body is None:
        return Resolution("waiting", "ProducerNotFound", f"waiting for {producer} to be created", producer=producer)
    status = body.get("status") or {}
    phase = status.get("phase") or "Pending"
    artifact = status.get("artifact") or {}
    if phase == "Succeeded" and artifact.get("uri"):
        return Resolution(
            "ready",
            "ProducerSucceeded",
            f"using the artifact of {producer}",
            uri=artifact["uri"],
            producer=producer,
            created_at=artifact.get("createdAt"),
        )
    if phase == "Failed":
        why = ": ".join(x for x in (status.get("reason"), status.get("message")) if x)
        return Resolution(
            "failed", "ProducerFailed", f"{producer} failed{': ' + why if why else ''}", producer=producer
        )
    progress = (status.get("progress") or {}).get("summary")
    detail = f"{phase}{', ' + progress if progress else ''}"
    return Resolution(
        "waiting", "WaitingForProducer", f"waiting for {producer} to succeed (now {detail})", producer=producer
    )


def producer_of(kind: str, spec: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the resource whose artifact a `kind` resource with this (stored) spec uses;
    None for a TrainJob (its model is a definition) and for a plain uri."""
    if kind == "TrainJob":
        return None
    return ModelReference.parse(spec.get("model")).producer


def _cycle(kind: str, name: str, lookup: Lookup, consumer: tuple[str, str]) -> list[str] | None:
    """The chain back to `consumer`, if following producers' own model references leads there."""
    chain = [f"{consumer[0]}/{consumer[1]}", f"{kind}/{name}"]
    for _ in range(MAX_CHAIN):
        if (kind, name) == consumer:
            return chain
        body = lookup(kind, name)
        upstream = producer_of(kind, (body or {}).get("spec") or {})
        if upstream is None:
            return None  # TrainJobs and plain URIs end every chain
        kind, name = upstream
        chain.append(f"{kind}/{name}")
    return None
