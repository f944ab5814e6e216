"""lmaas_worker.train.config: the TrainJob file the operator mounts."""

import json

import pytest
import yaml

from lmaas_api.errors import ConfigError
from lmaas_operator.config import OperatorConfig
from lmaas_operator.trainjob.builders import render_job
from lmaas_worker.train.config import load_train_config
from tests.unit.operator.builders import projected_config, stored

RESOURCE = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "j", "namespace": "ns", "uid": "u-1", "generation": 2},
    "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}},
}


@pytest.mark.parametrize("dump", [json.dumps, yaml.safe_dump])
def test_json_or_yaml_with_the_crd_defaults_applied(tmp_path, dump):
    path = tmp_path / "config"
    path.write_text(dump(RESOURCE))
    config = load_train_config(path, tmp_path / "deep" / "out", environ={"LMAAS_OUTPUT_URI": "pvc://c/p"})
    assert config.spec.hyperparameters.batch_size == 32 and config.spec.checkpoint.every_steps == 100
    assert config.producer == {"kind": "TrainJob", "name": "j", "namespace": "ns", "uid": "u-1", "generation": 2}
    assert config.output_dir.is_dir() and config.uri_of("artifact") == "pvc://c/p/artifact"


def test_problems_name_their_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**RESOURCE, "spec": {**RESOURCE["spec"], "strategy": "zero3"}}))
    with pytest.raises(ConfigError) as error:
        load_train_config(path, tmp_path, environ={})
    assert error.value.field == "spec.strategy" and "zero3" in str(error.value)
    path.write_text("[1, 2")
    with pytest.raises(ConfigError, match="neither JSON nor YAML|must hold a whole TrainJob"):
        load_train_config(path, tmp_path, environ={})


def test_the_document_in_the_pod_template_loads_and_names_its_producer_by_uid(tmp_path):
    job = render_job(
        stored({**RESOURCE, "spec": {**RESOURCE["spec"], "suspend": True}}, namespace="ns", uid="u-1"),
        OperatorConfig(worker_image="w:1", peering_priority=1),
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(projected_config(job["spec"]["template"])))
    config = load_train_config(path, tmp_path / "out", environ={})
    assert config.producer == {"kind": "TrainJob", "name": "j", "namespace": "ns", "uid": "u-1"}
    assert config.spec.model.builtin == "mlp" and config.spec.suspend is False  # left out: the CRD's default


def test_a_hugging_face_model_folder_is_where_the_operator_mounted_it(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                **RESOURCE,
                "spec": {
                    "model": {"hf": {"uri": "pvc://models/llama"}},
                    "dataset": {"builtin": "shakespeare", "sequenceLength": 64},
                },
            }
        )
    )
    config = load_train_config(
        path, tmp_path / "out", environ={"LMAAS_INPUT_DIR": "/var/lib/lmaas/volumes/models/llama"}
    )
    assert str(config.model_dir) == "/var/lib/lmaas/volumes/models/llama"
    with pytest.raises(ConfigError) as error:
        load_train_config(path, tmp_path / "out", environ={})
    assert error.value.field == "spec.model.hf.uri" and "$LMAAS_INPUT_DIR" in str(error.value)
    path.write_text(json.dumps(RESOURCE))
    assert load_train_config(path, tmp_path / "out", environ={"LMAAS_INPUT_DIR": "/x"}).model_dir is None
