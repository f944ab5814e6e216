"""lmaas_operator.config: LMAAS_* variables → one OperatorConfig."""

import pytest

from lmaas_api.errors import ConfigError
from lmaas_operator.config import OperatorConfig


def test_defaults_watch_the_whole_cluster_with_peering():
    config = OperatorConfig.from_env({})
    assert config.namespace == ""
    assert config.peering == "lmaas"
    assert 1 <= config.peering_priority <= 32767


def test_variables_override_defaults_with_their_types():
    config = OperatorConfig.from_env(
        {
            "LMAAS_NAMESPACE": "ml",
            "LMAAS_WORKER_IMAGE": "registry.example/w:1",
            "LMAAS_PEERING_PRIORITY": "7",
            "LMAAS_WATCH_TIMEOUT_SECONDS": "30",
            "LMAAS_PEERING": "",
        }
    )
    assert (config.namespace, config.worker_image) == ("ml", "registry.example/w:1")
    assert (config.peering_priority, config.watch_timeout_seconds, config.peering) == (7, 30, "")


def test_two_replicas_draw_different_priorities_so_one_leads():
    assert len({OperatorConfig.from_env({}).peering_priority for _ in range(20)}) > 1


@pytest.mark.parametrize(
    "env,named",
    [
        ({"LMAAS_PEERING_PRIORITY": "high"}, "LMAAS_PEERING_PRIORITY"),
        ({"LMAAS_LOG_FORMAT": "xml"}, "LMAAS_LOG_FORMAT"),
        ({"LMAAS_LOG_LEVEL": "LOUD"}, "LMAAS_LOG_LEVEL"),
    ],
)
def test_a_bad_value_names_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        OperatorConfig.from_env(env)
