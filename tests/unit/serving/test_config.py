"""Serving settings: flag, else the ModelService, else defaults; the token only from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_api.errors import ConfigError
from lmaas_worker.serve import config as serve_config
from lmaas_worker.serve.config import resolve_config, resolve_model_name


def _write(tmp_path: Path, spec: dict, name: str = "digits-svc") -> Path:
    path = tmp_path / "ms.json"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "lmaas.io/v1alpha1",
                "kind": "ModelService",
                "metadata": {"name": name, "namespace": "ns", "uid": "u"},
                "spec": spec,
            }
        )
    )
    return path


def test_defaults_without_a_config(monkeypatch):
    monkeypatch.setattr(serve_config, "available_cpus", lambda: 3)
    config = resolve_config(model_dir="/m", environ={})
    assert (config.port, config.max_batch_size, config.max_latency_ms, config.threads) == (8080, 32, 5.0, 3)
    assert config.name is None and config.auth_token is None and config.host == "0.0.0.0"


def test_the_modelservice_fills_what_flags_leave_open(tmp_path):
    path = _write(
        tmp_path,
        {
            "model": {"uri": "pvc://models/digits"},
            "port": 9000,
            "threads": 2,
            "batching": {"maxBatchSize": 8, "maxLatencyMs": 2.5},
        },
    )
    config = resolve_config(path, "/m", environ={})
    assert (config.name, config.port, config.max_batch_size, config.max_latency_ms, config.threads) == (
        "digits-svc",
        9000,
        8,
        2.5,
        2,
    )
    assert config.source == "pvc://models/digits"
    flagged = resolve_config(
        path, "/m", port=7000, name="other", max_batch_size=1, max_latency_ms=0, threads=4, environ={}
    )
    assert (flagged.name, flagged.port, flagged.max_batch_size, flagged.max_latency_ms, flagged.threads) == (
        "other",
        7000,
        1,
        0.0,
        4,
    )


def test_yaml_config_and_the_producer_as_source(tmp_path):
    path = tmp_path / "ms.yaml"
    path.write_text(
        "apiVersion: lmaas.io/v1alpha1\nkind: ModelService\nmetadata: {name: s}\n"
        "spec: {model: {fromCompressJob: small}}\n"
    )
    config = resolve_config(path, "/m", environ={})
    assert config.name == "s" and config.source == "CompressJob/small" and config.max_batch_size == 32


def test_model_dir_comes_from_the_environment_when_not_given():
    assert resolve_config(environ={"LMAAS_INPUT_DIR": "/in"}).model_dir == Path("/in")
    with pytest.raises(ConfigError, match="--model-dir"):
        resolve_config(environ={})


def test_the_token_comes_from_the_environment_and_never_shows():
    config = resolve_config(model_dir="/m", environ={"LMAAS_AUTH_TOKEN": "hunter2-token"})
    assert config.auth_token == "hunter2-token"
    assert "hunter2" not in repr(config) and "hunter2" not in config.describe()
    assert "auth=bearer token" in config.describe()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"max_batch_size": 0}, "--max-batch-size"),
        ({"max_latency_ms": -1.0}, "--max-latency-ms"),
        ({"threads": 0}, "--threads"),
        ({"port": 70000}, "--port"),
        ({"name": "a/b"}, "--name"),
        ({"name": "-x"}, "--name"),
    ],
)
def test_bad_flags_are_config_errors_naming_the_flag(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        resolve_config(model_dir="/m", environ={}, **kwargs)


def test_a_bad_modelservice_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match="spec.batching.maxBatchSize"):
        resolve_config(
            _write(tmp_path, {"model": {"uri": "x"}, "batching": {"maxBatchSize": "many"}}), "/m", environ={}
        )
    with pytest.raises(ConfigError, match="kind"):
        path = tmp_path / "tj.json"
        path.write_text(json.dumps({"kind": "TrainJob", "spec": {}}))
        resolve_config(path, "/m", environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        resolve_config(tmp_path / "missing.json", "/m", environ={})


def _card(**fields) -> ModelCard:
    return ModelCard.model_validate(
        {"format": contract.ARTIFACT_FORMAT, "model": {"builtin": "mlp"}, "task": "classification", **fields}
    )


def test_the_model_name_falls_back_to_the_artifact(tmp_path):
    artifact = tmp_path / "run-7" / "artifact"
    assert resolve_model_name("given", _card(name="x"), artifact) == "given"
    assert resolve_model_name(None, _card(name="card-name"), artifact) == "card-name"
    producer = {"kind": "TrainJob", "name": "digits-mlp"}
    assert resolve_model_name(None, _card(producer=producer), artifact) == "digits-mlp"
    assert resolve_model_name(None, _card(), artifact) == "run-7"  # "artifact" says nothing; its parent does
    assert resolve_model_name(None, _card(), tmp_path / "my model!") == "my-model"


def test_available_cpus_is_at_least_one():
    assert serve_config.available_cpus() >= 1
