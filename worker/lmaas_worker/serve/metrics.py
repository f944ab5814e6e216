"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand: a few
counters, histograms and gauges need no client library, and observing one costs a dict update.

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

import bisect
import math
from collections import defaultdict

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, math.inf), self.counts):
            cumulative += count
            le = "+Inf" if bound == math.inf else _number(bound)
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {cumulative}')
        braces = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braces} {_number(self.sum)}")
        out.append(f"{name}_count{braces} {cumulative}")
        return out


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.in_flight = 0
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.batch_duration = Histogram(LATENCY_BUCKETS)
        self.rows = 0
        self.ready = False
        self.info: dict[str, str] = {}

    def observe_request(self, endpoint: str, method: str, code: int, seconds: float) -> None:
        self.requests[(endpoint, method, code)] += 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def observe_batch(self, rows: int, seconds: float) -> None:
        self.batch_size.observe(rows)
        self.batch_duration.observe(seconds)
        self.rows += rows

    def render(self) -> bytes:
        lines = [
            "# HELP lmaas_requests_total Requests answered, by endpoint, method and status code.",
            "# TYPE lmaas_requests_total counter",
        ]
        for (endpoint, method, code), count in sorted(self.requests.items()):
            lines.append(
                f'lmaas_requests_total{{endpoint="{_escape(endpoint)}",method="{_escape(method)}",'
                f'code="{code}"}} {count}'
            )
        lines += [
            "# HELP lmaas_request_duration_seconds Time from routing a request to its response.",
            "# TYPE lmaas_request_duration_seconds histogram",
        ]
        for endpoint, histogram in sorted(self.latency.items()):
            lines += histogram.lines("lmaas_request_duration_seconds", f'endpoint="{_escape(endpoint)}"')
        lines += [
            "# HELP lmaas_requests_in_flight Requests being handled now.",
            "# TYPE lmaas_requests_in_flight gauge",
            f"lmaas_requests_in_flight {self.in_flight}",
            "# HELP lmaas_batch_size Rows per forward pass of the model.",
            "# TYPE lmaas_batch_size histogram",
            *self.batch_size.lines("lmaas_batch_size", ""),
            "# HELP lmaas_batch_duration_seconds Time of one forward pass, in the model thread.",
            "# TYPE lmaas_batch_duration_seconds histogram",
            *self.batch_duration.lines("lmaas_batch_duration_seconds", ""),
            "# HELP lmaas_inference_rows_total Rows run through the model.",
            "# TYPE lmaas_inference_rows_total counter",
            f"lmaas_inference_rows_total {self.rows}",
            "# HELP lmaas_model_ready 1 when the model is loaded, warmed up and not draining.",
            "# TYPE lmaas_model_ready gauge",
            f"lmaas_model_ready {int(self.ready)}",
            "# HELP lmaas_model_info The served model; the value is always 1.",
            "# TYPE lmaas_model_info gauge",
        ]
        if self.info:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.info.items()))
            lines.append(f"lmaas_model_info{{{labels}}} 1")
        return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
