"""ModelService → its children, as pure data: a Deployment of `lmaas serve`, a ClusterIP Service,
and (when they apply) a HorizontalPodAutoscaler and a PodDisruptionBudget.

The pod template carries the served artifact and the ModelService itself (the worker's config
file, pods.CONFIG_ANNOTATION) in annotations, so a newer artifact from the producer, or any spec
change but scaling, rolls the Deployment forward.
"""

from __future__ import annotations

from typing import Any

from lmaas_api import contract
from lmaas_api.resource import CustomResource
from lmaas_api.spec import ModelServiceSpec

from .. import pods
from ..config import OperatorConfig
from ..references import Resolution

COMPONENT = "server"
CONTAINER = "server"
WORKER_COMMAND = ["lmaas", "serve"]
ARTIFACT_ANNOTATION = "lmaas.io/artifact"
ARTIFACT_CREATED_ANNOTATION = "lmaas.io/artifact-created-at"
# Not in the pods' config document: the replica count and its bounds, so that scaling never rolls
# pods, and `pod` (the pod's own placement, labels and annotations, which would be in the pod
# twice). The worker reads none of them.
LEFT_OUT = ("replicas", "autoscaling", "pod")

ModelService = CustomResource[ModelServiceSpec]


def url(cr: ModelService) -> str:
    return f"http://{cr.name}.{cr.namespace}.svc:{cr.spec.port}"


def selector(cr: ModelService) -> dict[str, str]:
    return pods.labels(cr, COMPONENT)


def wants_autoscaler(cr: ModelService) -> bool:
    return cr.spec.autoscaling is not None


def wants_disruption_budget(cr: ModelService) -> bool:
    """Only when more than one replica can run: a budget on one replica would block node drains."""
    if cr.spec.autoscaling:
        return cr.spec.autoscaling.max_replicas > 1
    return cr.spec.replicas > 1


def render_deployment(cr: ModelService, image: str, model: Resolution) -> dict[str, Any]:
    spec = cr.spec
    claim, path = pods.parse_pvc_uri(model.uri)
    env = [pods.config_env(), {"name": contract.INPUT_DIR_ENV, "value": contract.volume_path(claim, path)}]
    if spec.auth:
        ref = spec.auth.token_secret_ref
        env.append({"name": contract.AUTH_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    env += pods.env_vars(spec.env)
    scratch, scratch_mounts = pods.scratch_volumes()
    config, config_mount = pods.config_volume()
    container = pods.worker_container(
        CONTAINER,
        spec.image or image,
        WORKER_COMMAND,
        env,
        spec.resources,
        [
            config_mount,
            {"name": "model", "mountPath": f"{contract.VOLUMES_ROOT}/{claim}", "readOnly": True},
            *scratch_mounts,
        ],
    )
    container["ports"] = [{"name": "http", "containerPort": spec.port}]
    # Ready means loaded and warmed up; alive means the server answers at all.
    container["readinessProbe"] = {
        "httpGet": {"path": contract.READINESS_PATH, "port": "http"},
        "periodSeconds": 5,
        "failureThreshold": 2,
    }
    container["livenessProbe"] = {
        "httpGet": {"path": contract.LIVENESS_PATH, "port": "http"},
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "failureThreshold": 3,
    }
    annotations = {
        **(spec.pod.annotations if spec.pod and spec.pod.annotations else {}),
        ARTIFACT_ANNOTATION: model.uri,
        **pods.config_annotation(cr.as_document(leave_out=LEFT_OUT)),
    }
    if model.created_at:
        annotations[ARTIFACT_CREATED_ANNOTATION] = model.created_at
    user_labels = spec.pod.labels if spec.pod else None
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(cr)},
        "revisionHistoryLimit": 5,
        # A new pod serves before an old one goes: no capacity lost in a rollout.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": {**(user_labels or {}), **selector(cr)}, "annotations": annotations},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": pods.pod_security_context(),
                "terminationGracePeriodSeconds": 30,
                "containers": [container],
                "volumes": [
                    config,
                    {"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}},
                    *scratch,
                ],
                **pods.placement(spec.pod),
            },
        },
    }
    if not wants_autoscaler(cr):
        deployment_spec["replicas"] = spec.replicas  # with an autoscaler, the autoscaler owns it
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": pods.metadata(cr, cr.name, COMPONENT, user_labels),
        "spec": deployment_spec,
    }


def render_service(cr: ModelService) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": pods.metadata(cr, cr.name, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(cr),
            "ports": [{"name": "http", "port": cr.spec.port, "targetPort": "http"}],
        },
    }


def render_autoscaler(cr: ModelService) -> dict[str, Any]:
    scaling = cr.spec.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": pods.metadata(cr, cr.name, COMPONENT),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": cr.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def render_disruption_budget(cr: ModelService) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": pods.metadata(cr, cr.name, COMPONENT),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(cr)}},
    }


def render_children(cr: ModelService, config: OperatorConfig, model: Resolution) -> list[dict[str, Any]]:
    """The children this ModelService wants now, serving the ready `model`, in apply order."""
    children = [render_deployment(cr, config.worker_image, model), render_service(cr)]
    if wants_autoscaler(cr):
        children.append(render_autoscaler(cr))
    if wants_disruption_budget(cr):
        children.append(render_disruption_budget(cr))
    return children


def unwanted_children(cr: ModelService) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of optional children this ModelService no longer wants."""
    unwanted = []
    if not wants_autoscaler(cr):
        unwanted.append(("autoscaling/v2", "HorizontalPodAutoscaler", cr.name))
    if not wants_disruption_budget(cr):
        unwanted.append(("policy/v1", "PodDisruptionBudget", cr.name))
    return unwanted
