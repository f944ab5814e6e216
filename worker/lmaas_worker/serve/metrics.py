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
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        # A `_created` series per counter and histogram would only add series that text format
        # 0.0.4 scrapers keep as plain gauges. The switch is process-wide; this process is the server.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "lmaas_requests_total",
            "Requests answered, by endpoint, method and status code.",
            ["endpoint", "method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "lmaas_request_duration_seconds",
            "Time from routing a request to its response.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.in_flight = 0
        """Requests being handled now (the drain waits for none)."""
        Gauge("lmaas_requests_in_flight", "Requests being handled now.", registry=registry).set_function(
            lambda: self.in_flight
        )
        self.batch_size = Histogram(
            "lmaas_batch_size", "Rows per forward pass of the model.", buckets=BATCH_BUCKETS, registry=registry
        )
        self.batch_duration = Histogram(
            "lmaas_batch_duration_seconds",
            "Time of one forward pass, in the model thread.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rows = Counter("lmaas_inference_rows_total", "Rows run through the model.", registry=registry)
        self.ready = Gauge(
            "lmaas_model_ready", "1 when the model is loaded, warmed up and not draining.", registry=registry
        )
        self.model_info = Info("lmaas_model", "The served model; the value is always 1.", registry=registry)

    def observe_request(self, endpoint: str, method: str, code: int, seconds: float) -> None:
        series = self._series.get((endpoint, method, code))
        if series is None:  # labels() costs more than the observation; the label values are bounded
            series = self._series[(endpoint, method, code)] = (
                self.requests.labels(endpoint, method, str(code)),
                self.latency.labels(endpoint),
            )
        series[0].inc()
        series[1].observe(seconds)

    def observe_batch(self, rows: int, seconds: float) -> None:
        self.batch_size.observe(rows)
        self.batch_duration.observe(seconds)
        self.rows.inc(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
