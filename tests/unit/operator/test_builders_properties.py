"""Property: every spec the CRD accepts gives children that are valid Kubernetes objects.

Objects are drawn from the CRDs' own schemas (schema_strategies.py); those that `validate` (schema,
defaults and CEL, as the API server) accepts must parse into the typed spec and render children
that the official Kubernetes 1.37 schemas accept, with every pod restricted and token-less.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, assume, given, settings

from lmaas_api.resource import CustomResource
from lmaas_api.validation import InvalidResource, validate
from lmaas_operator.compressjob.builders import render_children as compress_children
from lmaas_operator.config import OperatorConfig
from lmaas_operator.modelservice.builders import render_children as service_children
from lmaas_operator.references import Resolution
from lmaas_operator.trainjob.builders import render_children as train_children
from tests.unit.operator.builders import assert_valid_kubernetes
from tests.unit.operator.schema_strategies import resources

CONFIG = OperatorConfig(worker_image="registry.example/lmaas/worker:1", peering_priority=1)
PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow]
)


def accepted(doc: dict) -> CustomResource:
    """The object as the API server would store it, or the example is discarded."""
    try:
        body = validate(copy.deepcopy(doc))
    except InvalidResource:
        assume(False)
    body["metadata"].update(namespace="ns", uid="3f0c-uid", generation=1)
    return CustomResource.from_body(body)  # a spec the CRD accepts must parse: no PermanentError


def check_pods(children: list[dict]) -> None:
    assert_valid_kubernetes(*children)
    for child in children:
        if child["kind"] in ("Job", "Deployment"):
            pod = child["spec"]["template"]["spec"]
            assert pod["automountServiceAccountToken"] is False
            assert pod["securityContext"]["runAsNonRoot"] is True
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]


@PROPERTY
@given(resources("TrainJob"))
def test_every_accepted_trainjob_renders_valid_children(doc):
    check_pods(train_children(accepted(doc), CONFIG))


@PROPERTY
@given(resources("CompressJob"))
def test_every_accepted_compressjob_renders_valid_children(doc):
    cr = accepted(doc)
    model = Resolution(
        "ready", "ProducerSucceeded", "", uri=cr.spec.model.uri or "pvc://lmaas-artifacts/trainjobs/ns/x/artifact"
    )
    check_pods(compress_children(cr, CONFIG, model))


@PROPERTY
@given(resources("ModelService"))
def test_every_accepted_modelservice_renders_valid_children(doc):
    cr = accepted(doc)
    model = Resolution("ready", "ProducerSucceeded", "", uri=cr.spec.model.uri or "pvc://lmaas-artifacts/x/artifact")
    check_pods(service_children(cr, CONFIG, model))
