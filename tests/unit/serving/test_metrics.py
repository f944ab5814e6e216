"""The metrics exposition: what a Prometheus scrape of the server sees."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lmaas_worker.serve.metrics import Metrics

INFO = {
    "model": "digits",
    "task": "classification",
    "path": "/m",
    "source": "TrainJob/t",
    "producer": "TrainJob/t",
    "quantization": "none",
    "dtype": "float32",
}
FAMILIES = {  # name: (type, help, labels); what dashboards and alerts were written against
    "lmaas_requests": (
        "counter",
        "Requests answered, by endpoint, method and status code.",
        {"endpoint", "method", "code"},
    ),
    "lmaas_request_duration_seconds": ("histogram", "Time from routing a request to its response.", {"endpoint", "le"}),
    "lmaas_requests_in_flight": ("gauge", "Requests being handled now.", set()),
    "lmaas_batch_size": ("histogram", "Rows per forward pass of the model.", {"le"}),
    "lmaas_batch_duration_seconds": ("histogram", "Time of one forward pass, in the model thread.", {"le"}),
    "lmaas_inference_rows": ("counter", "Rows run through the model.", set()),
    "lmaas_model_ready": ("gauge", "1 when the model is loaded, warmed up and not draining.", set()),
    "lmaas_model_info": ("gauge", "The served model; the value is always 1.", set(INFO)),
}
SAMPLES = {
    "lmaas_requests_total",
    "lmaas_request_duration_seconds_bucket",
    "lmaas_request_duration_seconds_sum",
    "lmaas_request_duration_seconds_count",
    "lmaas_requests_in_flight",
    "lmaas_batch_size_bucket",
    "lmaas_batch_size_sum",
    "lmaas_batch_size_count",
    "lmaas_batch_duration_seconds_bucket",
    "lmaas_batch_duration_seconds_sum",
    "lmaas_batch_duration_seconds_count",
    "lmaas_inference_rows_total",
    "lmaas_model_ready",
    "lmaas_model_info",
}


def _scrape(metrics: Metrics) -> dict:
    return {family.name: family for family in text_string_to_metric_families(metrics.render().decode())}


def test_a_scrape_has_the_same_families_help_texts_and_labels_and_no_other_series():
    metrics = Metrics()
    metrics.model_info.info(INFO)
    metrics.observe_request("/v2/models/{model}/infer", "POST", 200, 0.002)
    metrics.observe_batch(4, 0.001)
    families = _scrape(metrics)
    assert {
        name: (family.type, family.documentation, {label for sample in family.samples for label in sample.labels})
        for name, family in families.items()
    } == FAMILIES
    assert {sample.name for family in families.values() for sample in family.samples} == SAMPLES


def test_histograms_are_cumulative_and_labels_escaped():
    metrics = Metrics()
    for seconds in (0.0004, 0.003, 0.003, 20.0):
        metrics.observe_request("/predict", "POST", 200, seconds)
    metrics.observe_batch(3, 0.001)
    metrics.observe_batch(40, 0.002)
    metrics.model_info.info({**INFO, "model": 'we"ird\\name'})
    text = metrics.render().decode()
    assert 'lmaas_requests_total{code="200",endpoint="/predict",method="POST"} 4.0' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="0.0005"} 1.0' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="0.005"} 3.0' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="10.0"} 3.0' in text
    assert 'lmaas_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"} 4.0' in text
    assert 'lmaas_batch_size_bucket{le="2.0"} 0.0' in text and 'lmaas_batch_size_bucket{le="4.0"} 1.0' in text
    assert 'lmaas_batch_size_bucket{le="64.0"} 2.0' in text and "lmaas_batch_size_sum 43.0" in text
    assert "lmaas_inference_rows_total 43.0" in text
    assert 'model="we\\"ird\\\\name"' in text
    assert _scrape(metrics)["lmaas_model_info"].samples[0].labels["model"] == 'we"ird\\name'


def test_in_flight_and_readiness_are_read_at_scrape_time():
    metrics = Metrics()
    metrics.in_flight = 3
    metrics.ready.set(True)
    families = _scrape(metrics)
    assert families["lmaas_requests_in_flight"].samples[0].value == 3
    assert families["lmaas_model_ready"].samples[0].value == 1


def test_a_value_on_a_bucket_bound_counts_in_that_bucket():
    metrics = Metrics()
    metrics.observe_batch(4, 0.005)
    text = metrics.render().decode()
    assert 'lmaas_batch_size_bucket{le="2.0"} 0.0' in text and 'lmaas_batch_size_bucket{le="4.0"} 1.0' in text
    assert 'lmaas_batch_duration_seconds_bucket{le="0.0025"} 0.0' in text
    assert 'lmaas_batch_duration_seconds_bucket{le="0.005"} 1.0' in text
