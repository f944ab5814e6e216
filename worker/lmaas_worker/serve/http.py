"""The HTTP front: one aiohttp low-level handler that routes, authenticates, reads bodies within
the limit, calls an adapter, turns errors into JSON and counts everything in the metrics.

aiohttp's low-level server is used (no Application, router or middleware chain): routing is a
dict lookup and two prefix checks, and every error, 404 and 405 included, is `{"error": ...}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from . import jsoncodec
from .auth import BearerAuth
from .dataplane import DataPlane
from .errors import ClientError
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .protocols import Call, Reply
from .protocols.seed import SeedProtocol
from .protocols.v1 import V1Protocol
from .protocols.v2 import V2Protocol

log = logging.getLogger(__name__)

Handler = Callable[[Call], Awaitable[Reply]]
_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    handler: Handler
    public: bool = False
    """No bearer token needed (probes, metrics)."""
    body: bool = False
    """Reads a request body."""
    inference: bool = False
    """Feeds the batcher: while its body is read, the batcher may wait for it."""


class Frontend:
    def __init__(self, plane: DataPlane, metrics: Metrics, auth: BearerAuth, openapi: dict, max_body_bytes: int):
        self.plane = plane
        self.metrics = metrics
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.openapi = jsoncodec.dumps(openapi)
        self.idle = asyncio.Event()
        self.idle.set()
        seed, v1, v2 = SeedProtocol(plane), V1Protocol(plane), V2Protocol(plane)
        self.routes: dict[str, dict[str, Endpoint]] = {
            "/predict": {"POST": Endpoint(seed.predict, body=True, inference=True)},
            "/v1/models": {"GET": Endpoint(v1.list_models)},
            "/v1/models/{model}": {"GET": Endpoint(v1.model_ready, public=True)},
            "/v1/models/{model}:predict": {"POST": Endpoint(v1.predict, body=True, inference=True)},
            "/v1/models/{model}:explain": {"POST": Endpoint(v1.explain, body=True)},
            "/v2": {"GET": Endpoint(v2.server_metadata)},
            "/v2/health/live": {"GET": Endpoint(v2.live, public=True)},
            "/v2/health/ready": {"GET": Endpoint(v2.ready, public=True)},
            "/v2/models/{model}": {"GET": Endpoint(v2.model_metadata)},
            "/v2/models/{model}/ready": {"GET": Endpoint(v2.model_ready, public=True)},
            "/v2/models/{model}/infer": {"POST": Endpoint(v2.infer, body=True, inference=True)},
            "/metrics": {"GET": Endpoint(self._metrics, public=True)},
            "/openapi.json": {"GET": Endpoint(self._openapi)},
        }

    @staticmethod
    def match(path: str) -> tuple[str | None, str | None]:
        """(route template, model name) of a path; (None, None) when no route has that shape."""
        if path.startswith("/v2/models/"):
            parts = path[len("/v2/models/") :].split("/")
            if parts[0] and len(parts) == 1:
                return "/v2/models/{model}", parts[0]
            if parts[0] and len(parts) == 2 and parts[1] in ("ready", "infer"):
                return f"/v2/models/{{model}}/{parts[1]}", parts[0]
            return None, None
        if path.startswith("/v1/models/"):
            rest = path[len("/v1/models/") :]
            if not rest or "/" in rest:
                return None, None
            name, colon, verb = rest.rpartition(":")
            if not colon:
                return "/v1/models/{model}", rest
            if name and verb in ("predict", "explain"):
                return f"/v1/models/{{model}}:{verb}", name
            return None, None
        return (path, None) if path in _STATIC else (None, None)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight += 1
        self.idle.clear()
        method = request.method
        template = None
        try:
            template, model = self.match(request.path)
            if template is None:
                raise ClientError(404, f"no endpoint at {request.path}; see /openapi.json")
            endpoints = self.routes[template]
            endpoint = endpoints.get(method)
            if endpoint is None:
                allowed = ", ".join(sorted(endpoints))
                raise ClientError(405, f"{method} is not allowed on {template}; use {allowed}", {"Allow": allowed})
            if not endpoint.public and not self.auth.allows(request.headers.get("Authorization")):
                raise ClientError(
                    401,
                    "missing or wrong bearer token (Authorization: Bearer <token>)",
                    {"WWW-Authenticate": 'Bearer realm="lmaas"'},
                )
            body = b""
            if endpoint.body:
                if endpoint.inference:
                    self.plane.arriving += 1
                try:
                    body = await self._read_body(request)
                finally:
                    if endpoint.inference:
                        self.plane.arriving -= 1
            reply = await endpoint.handler(Call(model, body, request.headers))
            response = self._response(reply)
        except ClientError as error:
            response = self._error(error.status, error.message, error.headers)
            if error.status == 413:
                response.force_close()  # the body was not read: this connection cannot carry another request
        except Exception as error:
            log.exception("%s %s failed", method, template or "(unmatched)")
            response = self._error(500, f"internal server error: {type(error).__name__}: {error}")
        finally:
            metrics.in_flight -= 1
            if metrics.in_flight == 0:
                self.idle.set()
        if self.plane.draining:
            response.force_close()  # clients reconnect, to a pod that is not going away
        metrics.observe_request(
            template or "unmatched",
            method if method in _METHODS else "other",
            response.status,
            time.perf_counter() - started,
        )
        return response

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        limit = self.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise ClientError(413, f"the request body has {length} bytes; the limit is {limit} bytes")
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if length is not None:
            return await request.content.read()  # the parser stops at Content-Length
        chunks, size = [], 0
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > limit:
                raise ClientError(413, f"the request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _response(reply: Reply) -> web.Response:
        payload = reply.payload if isinstance(reply.payload, bytes) else jsoncodec.dumps(reply.payload)
        headers = {"Content-Type": reply.content_type}
        if reply.headers:
            headers.update(reply.headers)
        return web.Response(body=payload, status=reply.status, headers=headers)

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=jsoncodec.dumps({"error": message}), status=status, headers=headers, content_type="application/json"
        )

    async def _metrics(self, call: Call) -> Reply:
        return Reply(self.metrics.render(), content_type=METRICS_CONTENT_TYPE)

    async def _openapi(self, call: Call) -> Reply:
        return Reply(self.openapi)


_STATIC = {"/predict", "/v1/models", "/v2", "/v2/health/live", "/v2/health/ready", "/metrics", "/openapi.json"}
