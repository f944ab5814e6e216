"""`lmaas serve` and code named by the artifact's model card: never run unless the ModelService
(or `--trust-artifact-code`) trusts it; a builtin model always loads."""

from __future__ import annotations

import json

import pytest

from tests import artifact_code

pytestmark = pytest.mark.serving

ROW = [0.25] * 64


def model_service(path, trust: bool):
    document = {
        "apiVersion": "lmaas.io/v1alpha1",
        "kind": "ModelService",
        "metadata": {"name": "custom"},
        "spec": {"model": {"uri": "pvc://models/custom"}, "trustArtifactCode": trust},
    }
    path.write_text(json.dumps(document))
    return str(path)


def test_a_hostile_card_never_becomes_ready_runs_nothing_and_says_why(tmp_path, start_server):
    marker = tmp_path / "ran"
    directory = artifact_code.hostile(tmp_path / "hostile", marker)
    server = start_server(directory, "--name", "hostile", ready=False)
    assert server.wait() == 78  # the configuration-error exit
    log = server.log
    assert "cannot load the model" in log and artifact_code.REFUSAL in log and artifact_code.HOW_TO_ALLOW in log
    assert "warm-up inference" not in log and "ready: model" not in log
    assert not marker.exists()


def test_a_user_factory_serves_only_when_trusted(tmp_path, start_server):
    directory = artifact_code.user_factory(tmp_path / "custom")
    refused = start_server(directory, "--config", model_service(tmp_path / "untrusted.json", False), ready=False)
    assert refused.wait() == 78
    assert f'model.factory "{artifact_code.USER_FACTORY}"' in refused.log
    for flags in (
        ["--config", model_service(tmp_path / "trusted.json", True)],
        ["--name", "custom", "--trust-artifact-code"],
    ):
        server = start_server(directory, *flags)
        assert "trust_artifact_code=true" in server.log
        reply = server.post("/v1/models/custom:predict", {"instances": [ROW]})
        assert reply.status == 200 and len(reply.json["predictions"]) == 1
        server.stop()


def test_a_builtin_model_serves_without_trust(tmp_path, start_server):
    server = start_server(artifact_code.builtin(tmp_path / "builtin"), "--name", "builtin")
    assert "trust_artifact_code=false" in server.log
    assert server.post("/v1/models/builtin:predict", {"instances": [ROW]}).status == 200
