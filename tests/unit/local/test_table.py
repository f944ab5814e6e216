"""lmaas_operator.local.table: `lmaas get` prints what `kubectl get` would, from the CRDs' printer columns."""

import calendar
import json
import re
import time

import pytest
import yaml

from lmaas_operator.local.table import age, kind_of, render
from tests.unit.local.resources import compress_job, model_service, stored, train_job

NOW = calendar.timegm(time.strptime("2026-11-29T12:00:00Z", "%Y-%m-%dT%H:%M:%SZ"))


def three_hours_ago() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 3600 - 30))


def cells(line: str) -> list[str]:
    return re.split(r" {3,}", line.strip())


def running_trainjob():
    return stored(
        train_job("digits", nodes=2),
        {"phase": "Running", "nodes": "2", "progress": {"summary": "40/200 (20%)", "loss": 0.2513}},
        now=three_hours_ago(),
    )


def test_trainjob_columns_are_the_crds_printer_columns():
    header, row = render([running_trainjob()]).splitlines()
    assert cells(header) == ["NAME", "PHASE", "NODES", "PROGRESS", "LOSS", "AGE"]
    assert cells(row) == ["digits", "Running", "2", "40/200 (20%)", "0.2513", "3h"]


def test_cells_line_up_under_their_headers():
    header, row = render([running_trainjob()]).splitlines()
    for column, value in (("PROGRESS", "40/200 (20%)"), ("LOSS", "0.2513"), ("AGE", "3h")):
        assert header.index(column) == row.index(value)


def test_wide_adds_the_priority_1_columns():
    header, row = render([running_trainjob()], "wide").splitlines()
    assert cells(header) == ["NAME", "PHASE", "NODES", "PROGRESS", "LOSS", "AGE", "STRATEGY", "REASON", "ARTIFACT"]
    assert cells(row)[6:] == ["ddp", "<none>", "<none>"]


def test_missing_values_show_as_none():
    header, row = render([stored(compress_job("small", fromTrainJob="digits"), now=three_hours_ago())]).splitlines()
    assert cells(header) == ["NAME", "PHASE", "STEPS", "SIZE-RATIO", "ACC-DELTA", "AGE"]
    assert cells(row) == ["small", "<none>", "<none>", "<none>", "<none>", "3h"]


def test_each_kind_gets_its_own_table_in_kind_order():
    text = render([stored(model_service("serve", fromTrainJob="digits")), running_trainjob()])
    trainjobs, services = text.split("\n\n")
    assert trainjobs.splitlines()[1].startswith("digits ")
    assert cells(services.splitlines()[0])[:3] == ["NAME", "PHASE", "READY"]
    assert services.splitlines()[1].startswith("serve ")


def test_without_a_kind_names_carry_their_resource():
    text = render([running_trainjob()], show_kind=True)
    assert text.splitlines()[1].startswith("trainjob")
    assert "lmaas.io/digits" in text.splitlines()[1]


def test_without_a_kind_names_are_prefixed_as_kubectl_does():
    assert render([running_trainjob()], show_kind=True).splitlines()[1].startswith("trainjob.lmaas.io/digits ")


def test_yaml_output_of_one_resource_is_the_resource():
    body = running_trainjob()
    assert yaml.safe_load(render([body], "yaml")) == body


def test_json_output_of_several_resources_is_a_list():
    bodies = [running_trainjob(), stored(train_job("other"))]
    assert json.loads(render(bodies, "json")) == {"apiVersion": "v1", "kind": "List", "items": bodies}


def test_nothing_to_render_is_an_empty_string():
    assert render([]) == ""


@pytest.mark.parametrize("word", ["tj", "trainjobs", "trainjob", "TrainJob", "TRAINJOBS"])
def test_kind_of_accepts_what_kubectl_accepts(word):
    assert kind_of(word) == "TrainJob"


def test_kind_of_accepts_every_short_name():
    assert (kind_of("cpj"), kind_of("ms"), kind_of("modelservices")) == ("CompressJob", "ModelService", "ModelService")


def test_kind_of_refuses_an_unknown_word_naming_the_known_ones():
    with pytest.raises(ValueError) as refused:
        kind_of("pods")
    assert 'resource type "pods"' in str(refused.value)
    assert "trainjobs" in str(refused.value) and "compressjobs" in str(refused.value)


@pytest.mark.parametrize(
    "seconds, shown",
    [
        (0, "0s"),
        (45, "45s"),
        (59, "59s"),
        (60, "1m"),
        (12 * 60 + 30, "12m"),
        (3 * 3600 + 59, "3h"),
        (2 * 86400 + 5, "2d"),
        (9 * 86400, "9d"),
    ],
)
def test_age_is_kubectls_short_form(seconds, shown):
    assert age("2026-11-29T12:00:00Z", now=NOW + seconds) == shown


def test_an_age_without_a_timestamp_is_unknown():
    assert age(None) == "<unknown>"
