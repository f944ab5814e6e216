"""End to end: `lmaas run` on resources whose input artifact's model card names a shell command.

The CompressJob and the ModelService both fail, saying which card field was refused and how to
allow it; the command never runs."""

from __future__ import annotations

import pytest
import yaml

from tests import artifact_code

from .test_local_run import lmaas, stored

pytestmark = pytest.mark.slow

HOSTILE_URI = "pvc://models/hostile"


def test_a_hostile_artifact_fails_the_compressjob_and_the_modelservice_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    runs = tmp_path / "lmaas-runs"
    artifact_code.hostile(runs / "volumes" / "models" / "hostile", marker)
    documents = [
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "CompressJob",
            "metadata": {"name": "smaller"},
            "spec": {"model": {"uri": HOSTILE_URI}, "steps": [{"quantize": {"scheme": "int8"}}]},
        },
        {
            "apiVersion": "lmaas.io/v1alpha1",
            "kind": "ModelService",
            "metadata": {"name": "served"},
            "spec": {"model": {"uri": HOSTILE_URI}},
        },
    ]
    (tmp_path / "hostile.yaml").write_text(yaml.safe_dump_all(documents))
    failed = lmaas("run", "-f", "hostile.yaml", cwd=tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "CompressJob/smaller did not succeed: Failed (ConfigError)" in failed.stdout
    compress = stored(runs, "compressjobs", "smaller")["status"]
    assert artifact_code.REFUSAL in compress["message"] and artifact_code.HOW_TO_ALLOW in compress["message"]
    service = stored(runs, "modelservices", "served")["status"]
    assert (service["phase"], service["reason"]) == ("Failed", "ReplicaFailed")
    assert "exited 78" in service["message"] and artifact_code.REFUSAL in service["message"]
    assert artifact_code.HOW_TO_ALLOW in service["message"]
    assert not marker.exists()
