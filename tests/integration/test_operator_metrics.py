"""The operator's Prometheus endpoint, scraped while it reconciles resources on the real control plane."""

import pytest

from tests.integration.conftest import wait_for
from tests.integration.operators import scrape, value

pytestmark = pytest.mark.integration


def test_reconciles_durations_and_resources_per_phase_are_exported(operator, kubectl, namespace):
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": "counted"},
            "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}},
        },
        namespace=namespace,
    )
    kubectl.apply(
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "CompressJob",
            "metadata": {"name": "waits"},
            "spec": {"model": {"fromTrainJob": "not-there"}, "steps": [{"quantize": {"scheme": "int8"}}]},
        },
        namespace=namespace,
    )

    def seen():
        samples = scrape(operator.metrics_url)
        return (
            value(samples, "lmaas_operator_reconciles_total", kind="TrainJob", handler="reconcile_trainjob")
            and value(samples, "lmaas_operator_resources", kind="CompressJob", phase="Waiting")
            and samples
        )

    samples = wait_for(seen, timeout=30, what="TrainJob reconciles and a Waiting CompressJob in the metrics")
    assert (
        value(samples, "lmaas_operator_reconcile_duration_seconds_count", kind="TrainJob", handler="reconcile_trainjob")
        >= 1
    )
    assert (
        value(
            samples,
            "lmaas_operator_reconcile_duration_seconds_count",
            kind="CompressJob",
            handler="reconcile_compressjob",
        )
        >= 1
    )
    assert value(samples, "lmaas_operator_resources", kind="TrainJob", phase="Pending") >= 1

    waiting = value(samples, "lmaas_operator_resources", kind="CompressJob", phase="Waiting")
    kubectl("delete", "compressjob", "waits", "-n", namespace)
    wait_for(
        lambda: (
            (value(scrape(operator.metrics_url), "lmaas_operator_resources", kind="CompressJob", phase="Waiting") or 0)
            < waiting
        ),
        timeout=30,
        what="the deleted CompressJob to leave the per-phase gauge",
    )
