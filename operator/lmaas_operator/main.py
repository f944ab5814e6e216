"""The kopf operator: registers one handler module per kind and holds every kopf setting.

`lmaas operator` runs it; tests run the same module in-process with kopf's KopfRunner and pass
their own OperatorConfig as `memo.config`.
"""

from __future__ import annotations

import logging
import os

import kopf

from . import kube, metrics, pods
from .config import OperatorConfig
from .handlers import compressjob, modelservice, trainjob  # noqa: F401  (registers the handlers)
from .handlers.timers import without_finalizers
from .persistence import GenerationDiffBase, ProgressAnnotations

without_finalizers(kopf.get_default_registry())


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_) -> None:
    """Every kopf setting, in one place."""
    config = memo.setdefault("config", OperatorConfig.from_env())

    # Resources get no finalizer (see handlers.timers); one left by an older operator
    # version is removed when its resource is deleted.
    settings.persistence.finalizer = "lmaas.io/finalizer"
    # Handler progress (retries) lives in annotations, so that status holds only what the operator
    # computes (no status.kopf); the last handled spec is status.observedGeneration.
    settings.persistence.progress_storage = ProgressAnnotations(prefix="lmaas.io")
    settings.persistence.diffbase_storage = GenerationDiffBase()
    # Watch only the operator's own children, not every pod and Job of the cluster.
    for resource in (
        "pods",
        "services",
        ("batch", "jobs"),
        ("apps", "deployments"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
    ):
        settings.watching.label_selectors[resource] = f"app.kubernetes.io/managed-by={pods.MANAGED_BY}"
    # Events are for people: the handlers' warnings and errors (kopf posts log messages only when
    # asked), not every successful handler call.
    settings.posting.loggers = True
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = kube.FIELD_MANAGER
    # Handlers are sync and spend their time waiting on the API server: more threads than
    # asyncio's default (CPUs + 4) keep a burst of new resources from queueing.
    settings.execution.max_workers = config.max_workers
    # Watches end server-side before any proxy would cut them, and reconnect quickly.
    settings.watching.server_timeout = config.watch_timeout_seconds
    settings.watching.client_timeout = config.watch_timeout_seconds + 30
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    # Leader election through kopf peering; several replicas may run, one handles resources.
    if config.peering:
        settings.peering.name = config.peering
        settings.peering.mandatory = True
        settings.peering.priority = config.peering_priority
        settings.peering.lifetime = config.peering_lifetime_seconds
        kube.apply(peering_object(config))
    else:
        settings.peering.standalone = True
    if config.metrics_address:
        memo["metrics_server"] = metrics.serve(config.metrics_address)
    logger.info(
        "lmaas operator configured: namespace=%s peering=%s priority=%s metrics=%s",
        config.namespace or "<all>",
        config.peering or "<standalone>",
        config.peering_priority,
        config.metrics_address or "<off>",
    )


@kopf.on.cleanup()
def stop_metrics(memo: kopf.Memo, **_) -> None:
    server = memo.get("metrics_server")
    if server is not None:
        server.shutdown()
        server.server_close()


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **kwargs) -> kopf.ConnectionInfo | None:
    """The service account in a cluster; elsewhere the kubeconfig through the kubernetes client
    (exec plugins work), read when the operator starts rather than when a module was imported."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return kopf.login_with_service_account(settings=settings, **kwargs)
    configuration = kube.api_client().configuration
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        trust_env=settings.networking.trust_env,
    )


def peering_object(config: OperatorConfig) -> dict:
    """The peering object kopf needs before it starts; the operator makes its own, so that
    `kubectl apply -k manifests` need not create a custom resource in the same breath as its CRD."""
    if config.namespace:
        return {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": config.peering, "namespace": config.namespace},
        }
    return {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": config.peering}}


def run_operator(config: OperatorConfig) -> None:
    """Run until SIGTERM/SIGINT (the CLI's `lmaas operator`)."""
    kopf.configure(
        verbose=config.log_level.upper() == "DEBUG",
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    logging.getLogger().setLevel(config.log_level.upper())
    kopf.run(
        clusterwide=not config.namespace,
        namespaces=[config.namespace] if config.namespace else (),
        liveness_endpoint=config.liveness_endpoint or None,
        memo=kopf.Memo(config=config),
    )
