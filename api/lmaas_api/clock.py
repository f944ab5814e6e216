"""Time as lmaas writes it in statuses, conditions and progress lines: RFC 3339 in UTC to the
second, the form the API server writes its own times in (a Job's startTime, a condition's
lastTransitionTime), so that every time in a status reads and compares alike."""

from __future__ import annotations

import datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime(FORMAT)


def parse(timestamp: str) -> datetime.datetime:
    """A time in FORMAT → an aware datetime in UTC; ValueError names a time in another form."""
    return datetime.datetime.strptime(timestamp, FORMAT).replace(tzinfo=datetime.UTC)
