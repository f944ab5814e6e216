"""Status timers ask for no finalizer, and only a timer that stops on deletion by itself may.

kopf has no public way to register a timer without a finalizer: handlers.timers changes the
registered timers. These tests go through kopf's own decision (the spawning registry that kopf's
processing asks whether a resource needs its finalizer), so they fail if a kopf release changes
what that reaches into."""

import logging

import kopf
import pytest
from kopf._core.intents import causes  # what kopf's processing builds for timers (kopf 1.45)

from lmaas_api.crds import GROUP, VERSION
from lmaas_operator.handlers.timers import STATUS_INTERVAL, exists, without_finalizers

TRAINJOBS = kopf.Resource(GROUP, VERSION, "trainjobs", kind="TrainJob", namespaced=True)


def asks_for_a_finalizer(registry: kopf.OperatorRegistry) -> bool:
    """What kopf decides for a TrainJob that exists (it is in its kind's index)."""
    body = kopf.Body(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TrainJob",
            "metadata": {"name": "digits", "namespace": "ml", "uid": "u-1"},
        }
    )
    cause = causes.SpawningCause(
        logger=logging.getLogger("test"),
        resource=TRAINJOBS,
        patch=kopf.Patch(),
        body=body,
        memo=kopf.Memo(),
        reset=False,
        indices={"trainjobs": {("ml", "digits"): [{}]}},
    )
    return registry._spawning.requires_finalizer(cause=cause)


def test_the_operators_timers_ask_for_no_finalizer():
    import lmaas_operator.main  # noqa: F401  (registers the handlers)

    registry = kopf.get_default_registry()
    timers = registry._spawning.get_all_handlers()
    assert {t.id for t in timers} == {
        "refresh_trainjob_status",
        "refresh_compressjob_status",
        "refresh_modelservice_status",
    }
    assert all(t.when is exists and t.interval == STATUS_INTERVAL for t in timers)
    assert not asks_for_a_finalizer(registry)


def test_kopf_asks_for_a_finalizer_for_a_status_timer_until_told_not_to():
    registry = kopf.OperatorRegistry()
    kopf.timer(GROUP, VERSION, "trainjobs", id="refresh", when=exists, registry=registry)(lambda **_: None)
    assert asks_for_a_finalizer(registry)
    without_finalizers(registry)
    assert not asks_for_a_finalizer(registry)
    assert [t.id for t in registry._spawning.get_all_handlers()] == ["refresh"]  # replaced, not added


def test_a_timer_that_would_outlive_its_resource_is_refused():
    registry = kopf.OperatorRegistry()

    @kopf.timer(GROUP, VERSION, "trainjobs", interval=1, registry=registry)
    def forever(**_):
        pass

    with pytest.raises(RuntimeError, match="forever.*status_timer"):
        without_finalizers(registry)


class FakeResource:
    plural = "trainjobs"


def test_exists_reads_the_kinds_own_index():
    assert exists(FakeResource(), "ml", "digits", trainjobs={("ml", "digits"): [{}]}, compressjobs={})
    assert not exists(FakeResource(), "ml", "gone", trainjobs={("ml", "digits"): [{}]}, compressjobs={})
