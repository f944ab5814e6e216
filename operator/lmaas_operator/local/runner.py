"""`lmaas run`: validate the CRs, order them by their model references, run the jobs, then serve.

Jobs run one after the other in dependency order (producers first); ModelServices are started
last and serve until Ctrl-C. A job that succeeded before with the same spec is skipped; one that
was stopped resumes (training continues from its latest checkpoint). A spec that the API server
would refuse to change (TrainJob and CompressJob specs are immutable) is refused here too.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from lmaas_api.card import read_card
from lmaas_api.clock import utc_now
from lmaas_api.validation import InvalidResource, validate

from ..references import producer_of
from .display import Display
from .documents import load_documents
from .kubelet import ignore_further_interrupts
from .serving import LocalService
from .store import Store, stored_body
from .workloads import Interrupted, run_job

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
SERVE_POLL_SECONDS = 0.5


def dependency_order(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Producers before consumers, otherwise in the order given. The members of a reference cycle
    come together (resolving their model fails them with the cycle named), before the consumers of
    the cycle, which then fail as consumers of a failed producer."""
    given = {(b["kind"], b["metadata"]["name"]): b for b in bodies}

    ordered: list[dict[str, Any]] = []
    placed: set[tuple[str, str]] = set()

    def place(key: tuple[str, str]) -> None:
        ordered.append(given[key])
        placed.add(key)

    def waits(key: tuple[str, str]) -> bool:
        """Whether its producer is among the given ones and not placed yet."""
        wanted = producer_of(key[0], given[key]["spec"])
        return wanted in given and wanted not in placed

    while len(placed) < len(given):
        ready = [k for k in given if k not in placed and not waits(k)]
        for key in ready:
            place(key)
        if not ready:  # only cycles and their consumers are left: place one whole cycle
            key = next(k for k in given if k not in placed)
            seen: list[tuple[str, str]] = []
            while key not in seen:
                seen.append(key)
                key = producer_of(key[0], given[key]["spec"])
            cycle = set(seen[seen.index(key) :])
            for member in [k for k in given if k in cycle]:
                place(member)
    return ordered


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the run cleanly. Set explicitly: a process started in the
    background by a shell inherits SIGINT ignored, and SIGTERM would otherwise kill the runner
    without stopping its children."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _succeeded_unchanged(body: dict[str, Any]) -> bool:
    status = body.get("status") or {}
    return status.get("phase") == "Succeeded" and status.get("observedGeneration") == body["metadata"]["generation"]


class Runner:
    def __init__(
        self, root: Path, stream: TextIO | None = None, live: bool | None = None, base_port: int | None = None
    ):
        self.store = Store(root)
        self.display = Display(stream, live)
        self.errors = sys.stderr
        self.base_port = base_port
        self.results: dict[tuple[str, str], dict[str, Any]] = {}

    def on_status(self, body: dict[str, Any]) -> None:
        self.store.put(body)
        self.results[(body["kind"], body["metadata"]["name"])] = body
        self.display.update(body)

    def run(self, sources: list[str]) -> int:
        stop_on_signals()
        documents = load_documents(sources)
        for skipped in documents.skipped:
            self.display.say(f"skipped {skipped}")
        bodies, problems = self._intake(documents.resources)
        problems = documents.errors + problems
        if problems:
            for problem in problems:
                print(f"error: {problem}" if not problem.startswith("error:") else problem, file=self.errors)
            return EXIT_FAILED
        if not bodies:
            print("error: no lmaas resources in the files given", file=self.errors)
            return EXIT_FAILED
        self.store.secrets = documents.secrets
        ordered = dependency_order(bodies)
        for body in ordered:
            self.store.put(body)
            self.results[(body["kind"], body["metadata"]["name"])] = body
        failed = False
        try:
            for body in [b for b in ordered if b["kind"] != "ModelService"]:
                failed |= not self._run_job(body)
            services = [b for b in ordered if b["kind"] == "ModelService"]
            if services:
                failed |= not self._serve(services)
        except Interrupted as stopped:
            self.display.say(f"interrupted: {stopped} stopped; its phase is recorded. Run the same command to go on.")
            self._summary()
            return EXIT_INTERRUPTED
        self._summary()
        return EXIT_FAILED if failed else 0

    def _intake(self, documents: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """The objects as stored after `kubectl apply`; an immutable spec that changed is a problem."""
        bodies, problems, now = [], [], utc_now()
        for document in documents:
            kind, name = document["kind"], document["metadata"]["name"]
            previous = self.store.get(kind, name)
            if previous is not None:
                try:
                    validate(document, old={k: v for k, v in previous.items() if k != "status"})
                except InvalidResource as error:
                    problems.append(
                        f"{error}. To start {kind} {name} over, remove its state and output: "
                        f"lmaas delete {kind.lower()} {name} --dir {self.store.root}"
                    )
                    continue
            bodies.append(stored_body(document, previous, now))
        return bodies, problems

    def _run_job(self, body: dict[str, Any]) -> bool:
        label = f"{body['kind']}/{body['metadata']['name']}"
        if _succeeded_unchanged(body):
            self.display.say(f"{label}: unchanged since it succeeded; skipped (its artifact is kept)")
            return True
        outcome = run_job(body, self.store, self.on_status)
        status = outcome.body.get("status") or {}
        if status.get("phase") == "Succeeded":
            return True
        self.display.say(
            f"{label} did not succeed: {status.get('phase')} ({status.get('reason')}): {status.get('message')}"
        )
        if outcome.log_tail:
            self.display.say("  last lines of its log:\n" + "\n".join(f"    {line}" for line in outcome.log_tail))
        return False

    def _serve(self, bodies: list[dict[str, Any]]) -> bool:
        ports: set[int] = set()
        services = [
            LocalService(b, self.store, self.on_status, ports, self.base_port if i == 0 else None)
            for i, b in enumerate(bodies)
        ]
        announced: set[str] = set()
        try:
            for service in services:
                service.start()
            while True:
                alive = [s for s in services if not s.failure]
                for service in alive:
                    status = service.step()
                    if status.get("phase") == "Ready" and service.cr.name not in announced:
                        announced.add(service.cr.name)
                        self.display.say(self._how_to_call(service))
                if not [s for s in services if not s.failure]:
                    break
                time.sleep(SERVE_POLL_SECONDS)
        except KeyboardInterrupt:
            ignore_further_interrupts()
            self.display.say("stopping the servers (Ctrl-C)")
        finally:
            for service in services:
                service.stop()
        return not any(s.failure for s in services)

    def _how_to_call(self, service: LocalService) -> str:
        name = service.cr.name
        example = json.dumps({"inputs": [_example_input(service, self.store)]}, separators=(",", ":"))
        return (
            f"serving ModelService/{name} on {', '.join(service.urls)} (Ctrl-C stops)\n"
            f"  curl -s {service.urls[0]}/predict -H 'Content-Type: application/json' -d '{example}'\n"
            f"  also: {service.urls[0]}/v1/models/{name}:predict, {service.urls[0]}/v2/models/{name}/infer, "
            f"{service.urls[0]}/metrics, {service.urls[0]}/openapi.json"
        )

    def _summary(self) -> None:
        self.display.say(self.display.summary(list(self.results.values()), self.store.volume_dir))


def _example_input(service: LocalService, store: Store) -> list[Any]:
    """Zeros of the served model's input shape, from its model card ([0] if it says none)."""
    try:
        card = read_card(store.volume_dir(service.resolution.uri))
    except (OSError, ValueError):  # the server says what is wrong with the artifact; this is only an example
        shape = [1]
    else:
        shape = (card.input.shape if card.input else None) or [1]
    example: Any = 0
    for dimension in reversed(shape):
        example = [example] * int(dimension)
    return example
