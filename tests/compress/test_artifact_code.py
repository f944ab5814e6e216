"""`lmaas compress` and code named by the input artifact's model card: never run unless the
CompressJob trusts it or names that factory itself (a distill student)."""

from __future__ import annotations

import json

import pytest

from lmaas_worker.compress import run_compression
from tests import artifact_code

from .conftest import compressjob, progress_events

pytestmark = pytest.mark.slow

QUANTIZE = [{"quantize": {"scheme": "int8"}}]


def compress(tmp_path, capsys, input_dir, steps, **spec):
    config = tmp_path / f"compressjob-{len(list(tmp_path.glob('compressjob-*')))}.json"
    config.write_text(json.dumps(compressjob("custom", steps, maxAccuracyDrop=100, **spec)))
    capsys.readouterr()
    code = run_compression(config_path=config, input_dir=input_dir, output_dir=tmp_path / "out")
    return code, progress_events(capsys.readouterr().out)


def test_a_hostile_input_fails_as_a_config_error_and_runs_nothing(tmp_path, capsys, worker_environment):
    marker = tmp_path / "ran"
    code, events = compress(tmp_path, capsys, artifact_code.hostile(tmp_path / "hostile", marker), QUANTIZE)
    assert code == 78
    error = events[-1]
    assert error["event"] == "error" and error["message"].startswith("ConfigError: " + artifact_code.REFUSAL)
    assert artifact_code.HOW_TO_ALLOW in error["message"]
    assert json.loads(worker_environment.read_text()) == error
    assert not marker.exists() and not (tmp_path / "out" / "artifact").exists()


def test_a_data_set_factory_in_the_input_card_is_not_run_unless_trusted(tmp_path, capsys):
    marker = tmp_path / "ran"
    code, events = compress(tmp_path, capsys, artifact_code.hostile_dataset(tmp_path / "hostile", marker), QUANTIZE)
    assert code == 78
    assert events[-1]["message"].startswith(
        f'ConfigError: model.json: dataset.factory "{artifact_code.HOSTILE_FACTORY}" is not a factory this resource names'
    )
    assert artifact_code.HOW_TO_ALLOW in events[-1]["message"]
    assert not marker.exists()


def test_a_user_factory_input_compresses_only_when_trusted(tmp_path, capsys):
    directory = artifact_code.user_factory(tmp_path / "custom")
    code, events = compress(tmp_path, capsys, directory, QUANTIZE)
    assert code == 78 and f'model.factory "{artifact_code.USER_FACTORY}"' in events[-1]["message"]
    code, events = compress(tmp_path, capsys, directory, QUANTIZE, trustArtifactCode=True)
    assert code == 0 and events[-1]["event"] == "done"


def test_a_student_factory_the_job_names_loads_without_trust(tmp_path, capsys):
    student = {"factory": artifact_code.USER_FACTORY, "args": {"hidden": [16], "delay": 0.0}}
    code, events = compress(
        tmp_path,
        capsys,
        artifact_code.builtin(tmp_path / "builtin"),
        [{"distill": {"student": student, "epochs": 1}}, *QUANTIZE],
    )
    assert code == 0 and events[-1]["event"] == "done"
    card = json.loads((tmp_path / "out" / "artifact" / "model.json").read_text())
    assert card["model"]["factory"] == artifact_code.USER_FACTORY
