"""Rank 0's progress lines, read from its pod's log: the worker needs no API access to report.

The operator reads the tail of the log of the pod that runs global rank 0 (it is found once, by
looking for progress lines, and remembered), at most every LOG_READ_INTERVAL seconds per job.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

import kubernetes

from lmaas_api import contract

from . import kube

LOG_READ_INTERVAL = 10.0
TAIL_LINES = 200


def parse_events(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Progress events among log lines (other lines are logs for people and are skipped)."""
    events = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(event, dict)
            and set(event) == set(contract.PROGRESS_KEYS)
            and event["event"] in contract.PROGRESS_EVENTS
        ):
            events.append(event)
    return events


def completion_index(pod: dict[str, Any]) -> int:
    annotations = pod["metadata"].get("annotations") or {}
    return int(annotations.get("batch.kubernetes.io/job-completion-index", 1 << 30))


def read_rank0_events(
    pods: list[dict[str, Any]],
    container: str,
    memo: MutableMapping[str, Any],
    logger: logging.Logger,
) -> list[dict[str, Any]]:
    """New-enough events from rank 0's log, or [] when it is not time to read or none is readable."""
    now = time.monotonic()
    if now - memo.get("logs_read_at", float("-inf")) < LOG_READ_INTERVAL:
        return []
    memo["logs_read_at"] = now
    running = [p for p in pods if (p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")]
    remembered = memo.get("rank0_pod")
    running.sort(key=lambda p: (p["metadata"]["name"] != remembered, completion_index(p)))
    for pod in running:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        try:
            text = kube.pod_log(name, namespace, container, TAIL_LINES)
        except kubernetes.client.ApiException as error:
            # Logs are unavailable while a container starts or after its node is gone; the next
            # read will tell. Progress is then just older, never wrong.
            logger.debug("no log from pod %s yet: %s %s", name, error.status, error.reason)
            continue
        events = parse_events(text.splitlines())
        if events:
            memo["rank0_pod"] = name
            return events
    return []
