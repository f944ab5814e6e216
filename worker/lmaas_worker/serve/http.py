"""The HTTP front: an aiohttp application whose router holds the endpoints that the protocol
adapters declare (and `/metrics`, `/openapi.json`), with one middleware that answers every error,
404 and 405 included, as `{"error": ...}` and counts every request in the metrics.

For a routed request, the endpoint's handler checks the bearer token and the model name in the
path (404 for any but the served one), reads the body within the limit, validates it with the
endpoint's request model, calls the adapter and writes its reply.
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
from .protocols import Call, Endpoint, ErrorBody, Reply, json_bytes, parse
from .protocols.seed import SeedProtocol
from .protocols.v1 import V1Protocol
from .protocols.v2 import V2Protocol

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}


class Frontend:
    def __init__(self, plane: DataPlane, metrics: Metrics, auth: BearerAuth, max_body_bytes: int):
        self.plane = plane
        self.metrics = metrics
        self.auth = auth
        self.max_body_bytes = max_body_bytes
        self.idle = asyncio.Event()
        self.idle.set()
        self.app = web.Application(middlewares=[self._answer])
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
            route = self.app.router.add_route(
                endpoint.method, endpoint.path, self._handler(endpoint), expect_handler=_continue_later
            )
            self.routes.append((route.resource.canonical, endpoint))
        self.openapi = orjson.dumps(
            build_openapi(self.routes, plane.model, auth.enabled, v2.server["version"], max_body_bytes)
        )

    @web.middleware
    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight += 1
        self.idle.clear()
        method = request.method
        template = None
        try:
            match = request.match_info
            if match.http_exception is not None:
                template, refusal = await self._unrouted(request)
                raise refusal
            template = match.route.resource.canonical
            response = await handler(request)
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

    async def _unrouted(self, request: web.Request) -> tuple[str | None, ClientError]:
        """Why the router matched no route: (the template of the path that matched, 405), or (None, 404)."""
        for resource in self.app.router.resources():
            _, allowed = await resource.resolve(request)
            if allowed:
                methods = ", ".join(sorted(allowed))
                return resource.canonical, ClientError(
                    405, f"{request.method} is not allowed on {resource.canonical}; use {methods}", {"Allow": methods}
                )
        return None, ClientError(404, f"no endpoint at {request.path}; see /openapi.json")

    def _handler(self, endpoint: Endpoint) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            if not endpoint.public and not self.auth.allows(request.headers.get("Authorization")):
                raise ClientError(
                    401,
                    "missing or wrong bearer token (Authorization: Bearer <token>)",
                    {"WWW-Authenticate": 'Bearer realm="lmaas"'},
                )
            model = request.match_info.get("model")
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

    async def _read_body(self, request: web.Request, endpoint: Endpoint) -> bytes:
        limit = self.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise ClientError(413, f"the request body has {length} bytes; the limit is {limit} bytes")
        if request.headers.get("Expect", "").lower() == "100-continue":
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
            body=json_bytes(ErrorBody(error=message)), status=status, headers=headers, content_type="application/json"
        )

    async def _metrics(self, call: Call) -> Reply:
        return Reply(self.metrics.render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)

    async def _openapi(self, call: Call) -> Reply:
        return Reply(self.openapi)


async def _continue_later(request: web.Request) -> None:
    """aiohttp would answer `Expect: 100-continue` before the handler runs; `_read_body`
    answers it once the token and the declared length have passed, so a refused body is never sent."""


def _split(body: bytes, header: str, value: str) -> tuple[bytes, bytes]:
    """(JSON part, binary part) of a body whose header `header` gives the JSON part's length."""
    try:
        length = int(value)
    except ValueError:
        raise bad_request(f"{header}: {value!r} is not a number") from None
    if not 0 < length <= len(body):
        raise bad_request(f"{header}: {length} does not fit a body of {len(body)} bytes")
    return body[:length], body[length:]
