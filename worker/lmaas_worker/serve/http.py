"""The HTTP front: aiohttp's router holds the endpoints that the protocol adapters declare (and
`/metrics`, `/openapi.json`); one handler, which aiohttp's low-level server calls for every
request, routes it through that router, answers every error, 404 and 405 included, as
`{"error": ...}` and counts every request in the metrics.

For a routed request, the endpoint's handler checks the bearer token and the model name in the
path (404 for any but the served one), reads the body within the limit, validates it with the
endpoint's request model, calls the adapter and writes its reply.

The low-level server rather than a `web.Application`: the application's request object, its
middleware chain and its signals are event-loop time on every request (about a fifth of this
front's, in a profile of V2 requests) for nothing this server needs. The router's answer for a
path of the served model is remembered, so the usual request is routed by one dict lookup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from .auth import BearerAuth
from .dataplane import DataPlane
from .errors import ClientError, bad_request
from .metrics import Metrics
from .openapi import build_openapi
from .protocols import Call, Endpoint, Reply, json_bytes, parse
from .protocols.seed import SeedProtocol
from .protocols.v1 import V1Protocol
from .protocols.v2 import V2Protocol

log = logging.getLogger(__name__)

RouteHandler = Callable[[web.BaseRequest, str | None], Awaitable[web.Response]]
"""What the router holds for an endpoint: called with the request and the model name in its path."""
_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}


class Frontend:
    def __init__(self, plane: DataPlane, metrics: Metrics, auth: BearerAuth, max_body_bytes: int):
        self.plane = plane
        self.metrics = metrics
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.idle = asyncio.Event()
        self.idle.set()
        self.router = web.UrlDispatcher()
        seed, v1, v2 = SeedProtocol(plane), V1Protocol(plane), V2Protocol(plane)
        own = [
            Endpoint(
                "GET",
                "/metrics",
                self._metrics,
                "Prometheus metrics (text format 0.0.4)",
                str,
                public=True,
                content_type="text/plain",
            ),
            Endpoint("GET", "/openapi.json", self._openapi, "This document", dict[str, object]),
        ]
        self.routes: list[tuple[str, Endpoint]] = []
        """(path template, endpoint) of every route, in the router's order."""
        for endpoint in (*seed.endpoints(), *v1.endpoints(), *v2.endpoints(), *own):
            route = self.router.add_route(endpoint.method, endpoint.path, self._handler(endpoint))
            self.routes.append((route.resource.canonical, endpoint))
        self.router.freeze()
        self._routed: dict[tuple[str, str], tuple[str, RouteHandler, str | None]] = {}
        """The router's answers, by method and path, for the paths it routes to the served model or to
        no model: at most one per route, so the usual request is routed by one lookup."""
        self.openapi = orjson.dumps(
            build_openapi(self.routes, plane.model, auth.enabled, v2.server["version"], max_body_bytes)
        )

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Every request's answer (the low-level server's handler)."""
        started = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight += 1
        self.idle.clear()
        method = request.method
        template = None
        try:
            route = self._routed.get((method, request.rel_url.path_safe)) or await self._route(request)
            if route is None:
                template, refusal = await self._unrouted(request)
                raise refusal
            template, handler, model = route
            response = await handler(request, model)
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

    async def _route(self, request: web.BaseRequest) -> tuple[str, RouteHandler, str | None] | None:
        """(path template, handler, model name in the path) of the request's route; None: no route."""
        match = await self.router.resolve(request)  # reads the path and method, which a BaseRequest has
        if match.http_exception is not None:
            return None
        model = match.get("model")
        route = (match.route.resource.canonical, match.handler, model)
        if model is None or model == self.plane.model.name:
            self._routed[(request.method, request.rel_url.path_safe)] = route
        return route

    async def _unrouted(self, request: web.BaseRequest) -> tuple[str | None, ClientError]:
        """Why the router matched no route: (the template of the path that matched, 405), or (None, 404)."""
        for resource in self.router.resources():
            _, allowed = await resource.resolve(request)
            if allowed:
                methods = ", ".join(sorted(allowed))
                return resource.canonical, ClientError(
                    405, f"{request.method} is not allowed on {resource.canonical}; use {methods}", {"Allow": methods}
                )
        return None, ClientError(404, f"no endpoint at {request.path}; see /openapi.json")

    def _handler(self, endpoint: Endpoint) -> RouteHandler:
        async def handle(request: web.BaseRequest, model: str | None) -> web.Response:
            if not endpoint.public and not self.auth.allows(request.headers.get("Authorization")):
                raise ClientError(
                    401,
                    "missing or wrong bearer token (Authorization: Bearer <token>)",
                    {"WWW-Authenticate": 'Bearer realm="lmaas"'},
                )
            if model is not None:
                self.plane.check_name(model)
            if endpoint.request is None:
                call = Call(model)
            else:
                body, binary = await self._read_body(request, endpoint), None
                if endpoint.binary_header is not None and endpoint.binary_header in request.headers:
                    body, binary = _split(body, endpoint.binary_header, request.headers[endpoint.binary_header])
                call = Call(model, parse(endpoint.request, body), binary)
            return self._response(await endpoint.call(call))

        return handle

    async def _read_body(self, request: web.BaseRequest, endpoint: Endpoint) -> bytes:
        limit = self.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise ClientError(413, f"the request body has {length} bytes; the limit is {limit} bytes")
        if request.headers.get("Expect", "").lower() == "100-continue":  # only once the token and length passed
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if endpoint.inference:
            self.plane.arriving += 1
        try:
            if length is not None:
                return await request.content.read()  # the parser stops at Content-Length
            chunks, size = [], 0
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > limit:
                    raise ClientError(413, f"the request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            if endpoint.inference:
                self.plane.arriving -= 1

    @staticmethod
    def _response(reply: Reply) -> web.Response:
        body = reply.body if isinstance(reply.body, bytes) else json_bytes(reply.body)
        headers = {"Content-Type": reply.content_type}
        if reply.headers:
            headers.update(reply.headers)
        return web.Response(body=body, status=reply.status, headers=headers)

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=json_bytes({"error": message}), status=status, headers=headers, content_type="application/json"
        )

    async def _metrics(self, call: Call) -> Reply:
        return Reply(self.metrics.render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)

    async def _openapi(self, call: Call) -> Reply:
        return Reply(self.openapi)


def _split(body: bytes, header: str, value: str) -> tuple[bytes, bytes]:
    """(JSON part, binary part) of a body whose header `header` gives the JSON part's length."""
    try:
        length = int(value)
    except ValueError:
        raise bad_request(f"{header}: {value!r} is not a number") from None
    if not 0 < length <= len(body):
        raise bad_request(f"{header}: {length} does not fit a body of {len(body)} bytes")
    return body[:length], body[length:]
