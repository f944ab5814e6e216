"""Status timers, which ask for no finalizer: the one place that reaches into kopf's registry.

kopf puts a finalizer on every resource a timer runs for, so that it can stop the timer before
the resource goes. The operator has nothing to do at deletion (children go with their owner
through ownerReferences; `exists` stops the timer) and the finalizer costs: a write and a watch
round trip before a new resource's first handler runs; a resource that cannot be deleted while the
operator is down; a namespace that stays Terminating for ever under a namespaced operator, because
kopf stops watching a terminating namespace before it removes its finalizers (nolar/kopf#1088).
kopf has no setting for it (kopf.timer registers every timer with requires_finalizer=True), so
`without_finalizers` replaces each timer in the registry with a copy that does not ask. kopf's
version is pinned to its minor release in pyproject.toml; tests/unit/operator/test_timers.py fails
if kopf stops honouring the copy, and tests/integration/test_deletion.py shows the effect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import kopf

from lmaas_api.crds import GROUP, VERSION

STATUS_INTERVAL = 3.0  # seconds between status refreshes of a resource
# The create handlers write the first status with the children. A first refresh STATUS_INTERVAL
# after creation lands in the middle of a burst of new resources and slows their handlers (the
# p99 of bench/operator at 200 resources; bench/README.md has the figures).
FIRST_REFRESH = 2 * STATUS_INTERVAL


def exists(resource: kopf.Resource, namespace: str, name: str, **indexes: Any) -> bool:
    """Whether a resource is in its kind's index (indexes.index_kind indexes each kind under its
    plural). kopf drops a deleted resource from its indexes before it matches timers against it, so
    this filter is what stops a deleted resource's status timer."""
    return (namespace, name) in indexes[resource.plural]


def status_timer(plural: str, id: str) -> Callable:
    """kopf.timer every STATUS_INTERVAL seconds from FIRST_REFRESH on, while the resource exists."""
    return kopf.timer(GROUP, VERSION, plural, id=id, interval=STATUS_INTERVAL, initial_delay=FIRST_REFRESH, when=exists)


def without_finalizers(registry: kopf.OperatorRegistry) -> None:
    """Make the registered timers ask for no finalizer; a timer that would not stop on deletion by
    itself is refused."""
    spawning = registry._spawning  # noqa: SLF001 (no public way; see the module's docstring)
    for index, handler in enumerate(spawning._handlers):  # noqa: SLF001
        if handler.when is not exists:
            raise RuntimeError(f"{handler} must stop on deletion by itself: register it with status_timer()")
        spawning._handlers[index] = dataclasses.replace(handler, requires_finalizer=False)  # noqa: SLF001
