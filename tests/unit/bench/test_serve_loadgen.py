"""The serving benchmark's load generator keeps every client's connection alive unless the server closes it."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.serve.loadgen import run_load


def _handler(closes: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"predictions": [3]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if closes:  # as werkzeug's development server answers every request
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


@contextmanager
def _server(closes: bool):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(closes))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/predict"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("closes", [False, True], ids=["keep-alive", "connection-close"])
def test_one_connection_per_client_unless_the_server_closes_each(closes):
    with _server(closes) as url:
        result = asyncio.run(run_load(url, b'{"inputs": [[0.0]]}', concurrency=4, requests=200, seconds=30))
    assert result["ok"] == result["requests"] == 200 and result["errors"] == 0
    assert result["connections"] == (200 if closes else 4)
