"""lmaas_api.clock: the one form of a time in statuses and progress lines."""

import datetime

import pytest

from lmaas_api import clock


def test_now_is_rfc_3339_in_utc_to_the_second_and_reads_back():
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    now = clock.utc_now()
    assert len(now) == len("2026-11-29T10:00:00Z") and now.endswith("Z")
    assert before <= clock.parse(now) <= datetime.datetime.now(datetime.UTC)


def test_a_time_the_api_server_wrote_reads_as_utc():
    assert clock.parse("2026-11-29T10:00:00Z") == datetime.datetime(2026, 11, 29, 10, tzinfo=datetime.UTC)


def test_a_time_in_another_form_is_refused():
    with pytest.raises(ValueError):
        clock.parse("2026-11-29 10:00:00")
