"""`lmaas serve`: set up logging, resolve the settings, listen, load and warm up, serve, drain.

Lifecycle, as a Kubernetes pod sees it:
1. The port opens at once: liveness answers 200, readiness 503 ("loading"), inference 503.
2. The artifact loads in a background thread, then a warm-up inference runs in the model thread
   (batch size 1 and the largest batch). Only then does readiness answer 200.
3. SIGTERM (or SIGINT): readiness answers 503 at once ("draining") so that the pod leaves the
   Service's endpoints; requests already received, and any that still arrive meanwhile, are
   answered (with `Connection: close`); as soon as none is in flight, or after
   `DRAIN_TIMEOUT_S`, the server closes and the process exits 0. A second signal stops waiting.

Exit status: 0 after a drain; 78 (`contract.EXIT_CONFIG_ERROR`) when the settings or the
artifact cannot work (missing, not an lmaas artifact, a pickle, a module that fails its warm-up
inference); 1 when the port cannot be opened or loading fails otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from lmaas_api import contract
from lmaas_api.errors import ConfigError

from ..artifacts import UnsafeArtifactError
from ..log import setup_logging
from .auth import BearerAuth
from .config import ServeConfig, resolve_config
from .dataplane import DataPlane
from .http import Frontend
from .metrics import Metrics
from .model import Model, open_model

log = logging.getLogger("lmaas_worker.serve")

KEEPALIVE_TIMEOUT_S = 75.0
SHUTDOWN_TIMEOUT_S = 2.0
"""After the drain, how long connections still open may take to finish."""
_CONFIG_FAILURES = (ConfigError, UnsafeArtifactError, FileNotFoundError, NotADirectoryError, ValueError, KeyError)


def run_server(
    config_path: str | None = None,
    model_dir: str | None = None,
    host: str | None = None,
    port: int | None = None,
    name: str | None = None,
    max_batch_size: int | None = None,
    max_latency_ms: float | None = None,
    threads: int | None = None,
    trust_artifact_code: bool | None = None,
) -> int:
    """Serve until SIGTERM; return the exit status. Every argument may be None (see `config`)."""
    setup_logging(0)
    try:
        config = resolve_config(
            config_path, model_dir, host, port, name, max_batch_size, max_latency_ms, threads, trust_artifact_code
        )
        model = open_model(config.model_dir, config.name, config.artifact_code)
    except _CONFIG_FAILURES as error:
        log.error("cannot serve: %s", error)
        return contract.EXIT_CONFIG_ERROR
    log.info("lmaas serve: %s", config.describe())
    return _event_loop_run(Server(config, model).run())


def _event_loop_run(main: Any) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


class Server:
    def __init__(self, config: ServeConfig, model: Model):
        self.config = config
        self.model = model
        self.metrics = Metrics()
        self.metrics.model_info.info({**model.info(), "source": config.source or ""})
        self.plane = DataPlane(model, self.metrics, config.max_batch_size, config.max_latency_ms, config.threads)
        self.frontend = Frontend(self.plane, self.metrics, BearerAuth(config.auth_token), config.max_body_bytes)
        self.stop = asyncio.Event()
        self.force = asyncio.Event()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            log.warning("%s again: stopping without waiting for in-flight requests", name)
            self.force.set()
            return
        log.info("%s: not ready any more; draining", name)
        self.plane.drain()
        self.stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        config = self.config
        runner = web.ServerRunner(
            web.Server(self.frontend.handle, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT_S),
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, config.host, config.port, reuse_address=True, backlog=2048).start()
        except OSError as error:
            log.error("cannot listen on %s:%d: %s", config.host, config.port, error.strerror or error)
            await runner.cleanup()
            return 1
        port = runner.addresses[0][1]
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        log.info(
            "listening on http://%s:%d; loading model %r (%s) from %s",
            config.host,
            port,
            self.model.name,
            self.model.task,
            config.model_dir,
        )
        status = await self._load_and_serve(loop, port)
        await runner.cleanup()
        await self.plane.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("stopped (exit status %d)", status)
        return status

    async def _load_and_serve(self, loop: asyncio.AbstractEventLoop, port: int) -> int:
        loading = _in_daemon_thread(loop, self.model.load)  # a stuck load must not keep the process alive
        stopping = loop.create_task(self.stop.wait())
        await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not loading.done():
            log.info("stopped before the model was loaded")
            return 0
        stopping.cancel()
        error = loading.exception()
        if error is not None:
            self.plane.state = "failed"
            log.error("cannot load the model from %s: %s: %s", self.config.model_dir, type(error).__name__, error)
            return contract.EXIT_CONFIG_ERROR if isinstance(error, _CONFIG_FAILURES) else 1
        self.plane.state = "warming up"
        log.info("model loaded; warm-up inference (batch sizes 1 and %d)", self.config.max_batch_size)
        try:
            seconds = await loop.run_in_executor(self.plane.executor, self.model.warm_up, self.config.max_batch_size)
        except Exception as error:  # the artifact's module cannot run on an input of its card's shape
            self.plane.state = "failed"
            log.error("warm-up inference failed: %s: %s", type(error).__name__, error)
            return contract.EXIT_CONFIG_ERROR
        log.info(
            "warm-up inference done in %.0f ms; ready: model %r on http://%s:%d",
            seconds * 1000,
            self.model.name,
            self.config.host,
            port,
        )
        self.model.ready = True
        self.plane.start()
        await self.stop.wait()
        await self._drain()
        return 0

    async def _drain(self) -> None:
        in_flight = self.metrics.in_flight
        log.info("draining: %d request(s) in flight; waiting at most %g s", in_flight, self.config.drain_timeout_s)
        idle = asyncio.ensure_future(self.frontend.idle.wait())
        forced = asyncio.ensure_future(self.force.wait())
        done, pending = await asyncio.wait(
            {idle, forced}, timeout=self.config.drain_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        if idle not in done:
            log.warning("drain ended with %d request(s) still in flight", self.metrics.in_flight)
        else:
            log.info("drained: no request in flight")


def _in_daemon_thread(loop: asyncio.AbstractEventLoop, function: Callable[[], Any]) -> asyncio.Future:
    future = loop.create_future()

    def deliver(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def target() -> None:
        try:
            result = function()
        except BaseException as error:  # noqa: BLE001 - handed to the event loop, which reports it
            loop.call_soon_threadsafe(deliver, None, error)
        else:
            loop.call_soon_threadsafe(deliver, result, None)

    threading.Thread(target=target, name="lmaas-load", daemon=True).start()
    return future
