"""A rendered batch/v1 Job, run by a small local Job controller over local pods.

It honours what lmaas's Jobs use: Indexed completions run in parallel, a pod failure re-creates
that index's pod until `backoffLimit` is spent, `podFailurePolicy` FailJob rules on exit codes, a
`successPolicy` on succeeded indexes, `activeDeadlineSeconds` and `suspend`. `manifest()` returns
the Job with the `status` the real controller would write, for the operator's status functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lmaas_api.clock import utc_now

from .kubelet import LocalPod

PodFactory = Callable[[int, int], LocalPod]
"""(completion index, attempt) → a pod, not yet started."""


class LocalJob:
    def __init__(self, manifest: dict[str, Any], make_pod: PodFactory):
        self._manifest = manifest
        self.spec = manifest["spec"]
        self._make_pod = make_pod
        self.completions = int(self.spec.get("completions", 1))
        self.pods: list[LocalPod] = []
        """Every pod made, oldest first; failed ones stay, as in a cluster until the Job goes."""
        self._current: dict[int, LocalPod] = {}
        self._attempts: dict[int, int] = {}
        self.failed = 0
        self.succeeded: set[int] = set()
        self.conditions: list[dict[str, Any]] = []
        self.start_time: str | None = None
        self.completion_time: str | None = None
        self._started_monotonic: float | None = None

    @property
    def finished(self) -> bool:
        return any(c["type"] in ("Complete", "Failed") for c in self.conditions)

    @property
    def suspended(self) -> bool:
        return bool(self.spec.get("suspend"))

    def start(self) -> None:
        if self.suspended:
            self._condition("Suspended", "JobSuspended", "Job suspended")
            return
        self.start_time = utc_now()
        self._started_monotonic = time.monotonic()
        for index in range(self.completions):
            self._launch(index)

    def _launch(self, index: int) -> None:
        attempt = self._attempts.get(index, 0)
        self._attempts[index] = attempt + 1
        pod = self._make_pod(index, attempt)
        self.pods.append(pod)
        self._current[index] = pod
        pod.start()

    def step(self) -> None:
        """Look at every current pod once and act as the Job controller would."""
        if self.finished or self.suspended:
            return
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is not None and time.monotonic() - (self._started_monotonic or 0) > deadline:
            return self._fail("DeadlineExceeded", "Job was active longer than specified deadline")
        for index, pod in list(self._current.items()):
            if pod.config_error:
                return self._fail("CreateContainerConfigError", f"pod {pod.name}: {pod.config_error}")
            code = pod.poll()
            if code is None:
                continue
            del self._current[index]
            if code == 0:
                self.succeeded.add(index)
                if self._success_policy_met(index) or len(self.succeeded) == self.completions:
                    return self._complete()
                continue
            rule = self._fail_job_rule(code)
            if rule is not None:
                self.failed += 1
                return self._fail(
                    "PodFailurePolicy",
                    f"Container {pod.container['name']} for pod {pod.name} failed "
                    f"with exit code {code} matching FailJob rule at index {rule}",
                )
            self.failed += 1
            if self.failed > int(self.spec.get("backoffLimit", 6)):
                return self._fail("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            self._launch(index)

    def _success_policy_met(self, index: int) -> bool:
        for rule in (self.spec.get("successPolicy") or {}).get("rules") or []:
            wanted = rule.get("succeededIndexes")
            if wanted is not None and _indexes(wanted) <= self.succeeded:
                return True
        return False

    def _fail_job_rule(self, code: int) -> int | None:
        for number, rule in enumerate((self.spec.get("podFailurePolicy") or {}).get("rules") or []):
            on = rule.get("onExitCodes")
            if rule.get("action") != "FailJob" or not on:
                continue
            matches = code in on["values"]
            if matches == (on.get("operator", "In") == "In"):
                return number
        return None

    def _complete(self) -> None:
        self.stop()
        if self.spec.get("successPolicy"):
            self._condition("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0")
        self._condition("Complete", "", "")
        self.completion_time = utc_now()

    def _fail(self, reason: str, message: str) -> None:
        self.stop()
        self._condition("FailureTarget", reason, message)
        self._condition("Failed", reason, message)

    def _condition(self, kind: str, reason: str, message: str) -> None:
        self.conditions.append(
            {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": utc_now()}
        )

    def stop(self) -> None:
        """Delete the running pods (SIGTERM, then SIGKILL after the grace period)."""
        for pod in self._current.values():
            pod.stop()
        self._current.clear()

    def manifest(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "conditions": list(self.conditions),
            "failed": self.failed,
            "succeeded": len(self.succeeded),
            "active": sum(p.running for p in self._current.values()),
        }
        if self.start_time:
            status["startTime"] = self.start_time
        if self.completion_time:
            status["completionTime"] = self.completion_time
        return {**self._manifest, "status": status}

    def pod_manifests(self) -> list[dict[str, Any]]:
        return [pod.status() for pod in self.pods]


def _indexes(text: str) -> set[int]:
    """A Job's index set syntax: "0", "1,3-5"."""
    found: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found
