"""The one exception a protocol adapter raises for a client's mistake: it becomes a 4xx JSON error."""

from __future__ import annotations


class ClientError(Exception):
    """A request the server will not serve, with the HTTP status and a message naming what is wrong.

    The body sent is `{"error": message}`; `headers` are added to the response (e.g. `Allow`).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ClientError:
    return ClientError(400, message)
