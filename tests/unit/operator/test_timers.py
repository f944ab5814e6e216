"""Status timers ask for no finalizer, and only a timer that stops on deletion by itself may."""
import kopf
import pytest

from lmaas_operator.handlers.common import GROUP, VERSION, STATUS_INTERVAL, exists, without_finalizers


def test_the_operators_timers_ask_for_no_finalizer():
    import lmaas_operator.main  # noqa: F401  (registers the handlers)
    timers = kopf.get_default_registry()._spawning.get_all_handlers()
    assert {t.id for t in timers} == {"reconcile_compressjob", "reconcile_modelservice", "refresh_trainjob_status"}
    assert all(t.requires_finalizer is False and t.when is exists and t.interval == STATUS_INTERVAL for t in timers)


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
