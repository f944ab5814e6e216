"""The ModelService worker, `lmaas serve`: one model, three REST dialects, one data plane.

server.py      the entry point (`run_server`) and the lifecycle: listen, load, warm up, drain
config.py      flags, else the ModelService in --config, else defaults
model.py       the served model (KServe-style load/predict/ready), classifier or character LM
batcher.py     dynamic batching: concurrent requests share one forward pass
dataplane.py   the model, its batcher and its thread, as the adapters see them
protocols/     thin adapters: the seed's /predict, KServe V1 (with explain), Open Inference V2;
               each declares its endpoints, pydantic models of its requests, TypedDicts of its responses
tensors.py     V2 datatypes and typed data to numpy, with the checks that make 400s
explain.py     integrated gradients and gradient x input
http.py        aiohttp's router and low-level server: auth, body limits, validation, JSON errors, metrics
metrics.py     the Prometheus metrics (a prometheus_client collector, a registry per server)
auth.py        the optional bearer token
openapi.py     the OpenAPI document served at /openapi.json, generated from routes and body types
"""

from .server import run_server

__all__ = ["run_server"]
