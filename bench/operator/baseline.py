"""The baseline of the scale benchmark: a bare controller, no framework.

What any controller for these kinds must do at the least, written directly: one watch per kind;
for each resource whose generation it has not handled, on a pool of threads, the operator's own
children (the same builders, the same server-side apply) and then one status write (phase and
observedGeneration). No finalizer, no annotations, no status timers, no retries, no leader
election, no metrics, no restoring of deleted children: everything lmaas's kopf operator does
beyond this is what the comparison prices.

    python -m bench.operator.baseline --namespace NS [--workers 16]
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import kubernetes

from lmaas_api.crds import GROUP, VERSION, load_crds
from lmaas_api.resource import CustomResource
from lmaas_operator import kube
from lmaas_operator.compressjob.builders import render_children as compressjob_children
from lmaas_operator.config import OperatorConfig
from lmaas_operator.modelservice.builders import render_children as modelservice_children
from lmaas_operator.references import resolve_model
from lmaas_operator.trainjob.builders import render_children as trainjob_children

FIRST_PHASE = {"TrainJob": "Pending", "CompressJob": "Pending", "ModelService": "Deploying"}


def children(cr: CustomResource, config: OperatorConfig) -> list[dict]:
    """The operator's children for a resource; a model must be a `uri:` (no producer lookups)."""
    if cr.kind == "TrainJob":
        return trainjob_children(cr, config)
    resolution = resolve_model(cr.spec.model, lambda kind, name: None, (cr.kind, cr.name))
    if resolution.state != "ready":
        raise ValueError(f"the baseline reads only uri: models; {cr.kind} {cr.name} has {cr.spec.model}")
    if cr.kind == "CompressJob":
        return compressjob_children(cr, config, resolution)
    return modelservice_children(cr, config, resolution)


@functools.cache
def custom_objects() -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(kube.api_client())


def reconcile(body: dict, plural: str, config: OperatorConfig) -> None:
    cr = CustomResource.from_body(body)
    for child in children(cr, config):
        kube.apply(child)
    custom_objects().patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        cr.namespace,
        plural,
        cr.name,
        {"status": {"phase": FIRST_PHASE[cr.kind], "observedGeneration": body["metadata"]["generation"]}},
    )


def watch(plural: str, namespace: str, pool: ThreadPoolExecutor, config: OperatorConfig) -> None:
    custom = custom_objects()
    handled: dict[str, int] = {}
    while True:
        for event in kubernetes.watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            deserialize=False,
            timeout_seconds=300,
        ):
            body = event["object"]
            meta = body["metadata"]
            if event["type"] == "DELETED":
                handled.pop(meta["name"], None)
            elif (
                handled.get(meta["name"]) != meta["generation"]
                and (body.get("status") or {}).get("observedGeneration") != meta["generation"]
            ):
                handled[meta["name"]] = meta["generation"]
                pool.submit(reconcile, body, plural, config).add_done_callback(report)


def report(future) -> None:
    if future.exception() is not None:
        print(f"reconcile failed: {future.exception()!r}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--workers", type=int, default=OperatorConfig().max_workers)
    args = parser.parse_args(argv)
    config = OperatorConfig.from_env()
    pool = ThreadPoolExecutor(args.workers)
    watchers = [
        threading.Thread(target=watch, args=(crd.plural, args.namespace, pool, config), daemon=True)
        for crd in load_crds().values()
    ]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        watcher.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
