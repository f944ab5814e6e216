"""The server's Prometheus metrics, in a registry of its own, exposed in text format 0.0.4.

    lmaas_requests_total{endpoint, method, code}        counter: requests answered
    lmaas_request_duration_seconds{endpoint}            histogram: time from routing to response
    lmaas_requests_in_flight                            gauge: requests being handled now
    lmaas_batch_size                                    histogram: rows per forward pass
    lmaas_batch_duration_seconds                        histogram: time of one forward pass
    lmaas_inference_rows_total                          counter: rows run through the model
    lmaas_model_ready                                   gauge: 1 when /v2/health/ready answers 200
    lmaas_model_info{model, task, path, source, producer, quantization, dtype}   gauge, always 1

`endpoint` is the route's template (e.g. `/v2/models/{model}/infer`), or `unmatched`, so that the
label's values are bounded whatever paths clients send.

What every request and every batch updates is counted in plain numbers, and prometheus_client
reads them at scrape time through its collector interface (`collect`) and writes the exposition.
Its own Counter and Histogram take a lock per update, which costs the event loop a few
microseconds per request; here every update and every scrape runs on the event loop's thread.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Histogram:
    """Observations counted per bucket (a value falls in the first bucket whose bound it does not exceed)."""

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.labels = [*map(floatToGoString, bounds), "+Inf"]  # as prometheus_client's Histogram writes `le`
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        family.add_metric(labels, list(zip(self.labels, itertools.accumulate(self.counts), strict=True)), self.sum)


class Metrics:
    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self.in_flight = 0
        """Requests being handled now (the drain waits for none)."""
        self._batch_size = _Histogram(BATCH_BUCKETS)
        self._batch_duration = _Histogram(LATENCY_BUCKETS)
        self._rows = 0
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        self.ready = Gauge(
            "lmaas_model_ready", "1 when the model is loaded, warmed up and not draining.", registry=self.registry
        )
        self.model_info = Info("lmaas_model", "The served model; the value is always 1.", registry=self.registry)

    def observe_request(self, endpoint: str, method: str, code: int, seconds: float) -> None:
        key = (endpoint, method, code)
        self._requests[key] = self._requests.get(key, 0) + 1
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = _Histogram(LATENCY_BUCKETS)
        latency.observe(seconds)

    def observe_batch(self, rows: int, seconds: float) -> None:
        self._batch_size.observe(rows)
        self._batch_duration.observe(seconds)
        self._rows += rows

    def collect(self) -> Iterator[Metric]:
        """The request and batch families, as they stand (prometheus_client's collector interface)."""
        requests = CounterMetricFamily(
            "lmaas_requests",
            "Requests answered, by endpoint, method and status code.",
            labels=["endpoint", "method", "code"],
        )
        for (endpoint, method, code), count in self._requests.items():
            requests.add_metric([endpoint, method, str(code)], count)
        yield requests
        latency = HistogramMetricFamily(
            "lmaas_request_duration_seconds", "Time from routing a request to its response.", labels=["endpoint"]
        )
        for endpoint, histogram in self._latency.items():
            histogram.add_to(latency, [endpoint])
        yield latency
        yield GaugeMetricFamily("lmaas_requests_in_flight", "Requests being handled now.", value=self.in_flight)
        batch_size = HistogramMetricFamily("lmaas_batch_size", "Rows per forward pass of the model.")
        self._batch_size.add_to(batch_size, [])
        yield batch_size
        batch_duration = HistogramMetricFamily(
            "lmaas_batch_duration_seconds", "Time of one forward pass, in the model thread."
        )
        self._batch_duration.add_to(batch_duration, [])
        yield batch_duration
        yield CounterMetricFamily("lmaas_inference_rows", "Rows run through the model.", value=self._rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
