"""The bearer-token check."""

from __future__ import annotations

import hmac

import pytest

from lmaas_worker.serve.auth import BearerAuth

TOKEN = "t0ken-with-some-length"


def test_no_token_configured_allows_everything():
    auth = BearerAuth(None)
    assert not auth.enabled and auth.allows(None) and auth.allows("Bearer anything")
    assert not BearerAuth("").enabled


@pytest.mark.parametrize(
    "header, allowed",
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer  {TOKEN} ", True),
        (None, False),
        ("", False),
        ("Bearer", False),
        ("Bearer ", False),
        (f"Basic {TOKEN}", False),
        (TOKEN, False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN.upper()}", False),
        ("Bearer \u00e9t\u00e9", False),
    ],
)
def test_only_the_exact_token_passes(header, allowed):
    assert BearerAuth(TOKEN).allows(header) is allowed


def test_the_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    BearerAuth(TOKEN).allows("Bearer nope")
    assert calls == [(b"nope", TOKEN.encode())]


def test_the_token_never_shows_in_repr():
    auth = BearerAuth(TOKEN)
    assert TOKEN not in repr(auth) and TOKEN not in str(auth) and "enabled=True" in repr(auth)
