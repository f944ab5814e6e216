"""lmaas_operator_resources counts each resource once, by its latest phase, and forgets a deleted
one for good: a handler call still under way when it was deleted does not bring it back."""

from lmaas_operator.metrics import PhaseCollector


def counts(collector: PhaseCollector) -> dict[tuple[str, str], float]:
    (family,) = collector.collect()
    return {(s.labels["kind"], s.labels["phase"]): s.value for s in family.samples}


def test_a_resource_counts_once_by_its_latest_phase():
    phases = PhaseCollector()
    phases.record("TrainJob", "ml", "a", "u-1", "Pending")
    phases.record("TrainJob", "ml", "a", "u-1", "Running")
    phases.record("TrainJob", "ml", "b", "u-2", "Running")
    assert counts(phases) == {("TrainJob", "Running"): 2}


def test_a_deleted_resource_is_not_recorded_again_but_a_new_one_of_that_name_is():
    phases = PhaseCollector()
    phases.record("CompressJob", "ml", "waits", "u-1", "Waiting")
    phases.forget("CompressJob", "ml", "waits", "u-1")
    phases.record("CompressJob", "ml", "waits", "u-1", "Waiting")  # a timer call that was under way
    assert counts(phases) == {}
    phases.record("CompressJob", "ml", "waits", "u-2", "Waiting")  # created again, a new uid
    assert counts(phases) == {("CompressJob", "Waiting"): 1}


def test_the_deleted_uids_kept_are_bounded():
    phases = PhaseCollector()
    for i in range(PhaseCollector.GONE_KEPT + 5):
        phases.forget("TrainJob", "ml", f"t{i}", f"u-{i}")
    assert len(phases._gone) == PhaseCollector.GONE_KEPT  # noqa: SLF001
    phases.record("TrainJob", "ml", "t0", "u-0", "Running")  # the oldest was let go
    assert counts(phases) == {("TrainJob", "Running"): 1}
