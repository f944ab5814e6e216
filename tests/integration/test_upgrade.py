"""An operator started over TrainJobs whose Jobs it would now render differently (made by an
earlier lmaas, which mounted a ConfigMap, or before its worker image changed): the API server keeps
a Job's pod template as it is, so the operator leaves the template, says so, and applies only what
may change. A Job of the same name that is not the TrainJob's own is refused, as before."""

import pytest

from lmaas_operator.config import OperatorConfig
from lmaas_operator.trainjob.builders import render_job
from tests.integration.conftest import wait_for
from tests.unit.operator.builders import stored

pytestmark = pytest.mark.integration
EARLIER_IMAGE = "registry.example/lmaas/worker:0.9"


def trainjob(name):
    return {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name},
        "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 2},
    }


def earlier_job(doc, namespace, uid):
    """The Job as an operator with another worker image rendered it, with the Job controller's TTL
    that lmaas set before it carried the TTL out itself."""
    job = render_job(
        stored(doc, namespace=namespace, uid=uid), OperatorConfig(worker_image=EARLIER_IMAGE, peering_priority=1)
    )
    job["spec"]["ttlSecondsAfterFinished"] = 3600
    return job


def test_a_job_with_another_pod_template_runs_on_and_still_follows_suspend(operators, kubectl, namespace):
    older, stray = trainjob("older"), trainjob("stray")
    kubectl.apply([older, stray], namespace=namespace)  # no operator yet
    kubectl.apply(
        earlier_job(older, namespace, kubectl.get("trainjob", "older", namespace)["metadata"]["uid"]),
        namespace=namespace,
    )
    not_its_own = earlier_job(stray, namespace, "another-uid")
    del not_its_own["metadata"]["ownerReferences"]  # left behind by a TrainJob deleted with --cascade=orphan
    kubectl.apply(not_its_own, namespace=namespace)
    operators().start()

    status = lambda name: kubectl.get("trainjob", name, namespace).get("status") or {}
    job = lambda name: kubectl.get("job", name, namespace)["spec"]
    image = lambda name: job(name)["template"]["spec"]["containers"][0]["image"]
    assert (
        wait_for(lambda: status("older").get("observedGeneration") == 1 and status("older"), what="the status")["phase"]
        == "Pending"
    )
    assert image("older") == EARLIER_IMAGE
    assert "ttlSecondsAfterFinished" not in job("older")  # the operator's to carry out now
    said = wait_for(
        lambda: [m for _, m in kubectl.events("TrainJob", "older", namespace) if "keeps its" in m],
        what="an Event",
        describe=lambda: kubectl.events("TrainJob", "older", namespace),
    )
    assert f"the Job {namespace}/older keeps its spec.template" in said[0]
    kubectl("patch", "trainjob", "older", "--type=merge", "-p", '{"spec":{"suspend":true}}', namespace=namespace)
    wait_for(lambda: job("older")["suspend"] is True, what="the Job suspended")
    wait_for(lambda: status("older").get("phase") == "Suspended", what="Suspended", describe=lambda: status("older"))
    assert image("older") == EARLIER_IMAGE

    refused = wait_for(
        lambda: status("stray").get("reason") == "ChildRejected" and status("stray"), what="ChildRejected"
    )
    assert refused["phase"] == "Failed" and "field is immutable" in refused["message"]
    assert job("stray")["ttlSecondsAfterFinished"] == 3600 and image("stray") == EARLIER_IMAGE
