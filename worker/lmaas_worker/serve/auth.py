"""The optional bearer token ($LMAAS_AUTH_TOKEN): which paths need it, and a constant-time check.

Exempt, so that probes and scrapers need no secret: the liveness and readiness endpoints
(`/v2/health/live`, `/v2/health/ready`, `/v2/models/<m>/ready`, `/v1/models/<m>`, which only says
whether the model is ready) and `/metrics`. Everything else, `/openapi.json` included, needs
`Authorization: Bearer <token>` when a token is set.
"""

from __future__ import annotations

import hmac


class BearerAuth:
    def __init__(self, token: str | None):
        self._token = token.encode() if token else None

    def __repr__(self) -> str:  # the token never shows, not even in a debugger or a traceback
        return f"BearerAuth(enabled={self.enabled})"

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def allows(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header value carries the token (always, when auth is off)."""
        if self._token is None:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # compare_digest takes time independent of where the first difference is
        return hmac.compare_digest(credentials.strip().encode(), self._token)
