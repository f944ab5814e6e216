"""lmaas_worker.artifacts.writing (through each format's writer): an artifact is written atomically,
replaces the previous one whole, and is copied elsewhere with its weights unchanged."""

import json

import pytest
import torch

from lmaas_api import contract
from lmaas_api.card import ModelCard, Quantization
from lmaas_worker.artifacts import copy_artifact, dense, load
from lmaas_worker.models.mlp import MLP


def card_for(args):
    return ModelCard.model_validate(
        {
            "format": contract.ARTIFACT_FORMAT,
            "model": {"builtin": "mlp", "factory": None, "args": args},
            "task": "classification",
            "dtype": "float32",
            "quantization": None,
            "producer": {"name": "unit"},
        }
    )


@pytest.fixture
def artifact(tmp_path):
    torch.manual_seed(0)
    args = {"in_features": 64, "num_classes": 10, "hidden": [32]}
    history = {"train": [[1, 2.3], [2, 1.9]], "eval": [[2, 0.5]], "evalMetric": "accuracy"}
    dense.save(tmp_path / "artifact", MLP(**args).state_dict(), card_for(args), {"accuracy": 0.5}, history)
    return tmp_path / "artifact"


def test_saving_again_replaces_the_artifact_and_leaves_no_temporary_directory(artifact, tmp_path):
    args = {"in_features": 64, "num_classes": 10, "hidden": [8]}
    dense.save(artifact, MLP(**args).state_dict(), card_for(args), {}, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]
    assert json.loads((artifact / contract.MODEL_CARD_FILE).read_text())["model"]["args"]["hidden"] == [8]
    assert not (artifact / "curves.png").exists()


def test_the_card_is_written_with_every_field_in_camel_case(artifact):
    written = json.loads((artifact / contract.MODEL_CARD_FILE).read_text())
    assert set(written) == {field.alias or name for name, field in ModelCard.model_fields.items()}
    assert written["numClasses"] is None and written["createdAt"] is None and written["producer"]["name"] == "unit"


def test_a_copy_has_the_same_weights_and_the_new_card_and_metrics(artifact, tmp_path):
    card = card_for({"in_features": 64, "num_classes": 10, "hidden": [32]}).model_copy(
        update={"created_at": "2026-12-06T10:00:00Z"}
    )
    size = copy_artifact(artifact, tmp_path / "copy", card, {"accuracy": 0.9})
    assert (tmp_path / "copy" / contract.WEIGHTS_FILE).read_bytes() == (artifact / contract.WEIGHTS_FILE).read_bytes()
    assert size == (artifact / contract.WEIGHTS_FILE).stat().st_size
    assert load(tmp_path / "copy")[1].created_at == "2026-12-06T10:00:00Z"
    assert json.loads((tmp_path / "copy" / contract.METRICS_FILE).read_text()) == {"accuracy": 0.9}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact", "copy"]


def test_the_float_writer_refuses_a_card_that_says_quantized(tmp_path):
    card = card_for({"in_features": 64, "num_classes": 10}).model_copy(
        update={"quantization": Quantization(scheme="int8")}
    )
    with pytest.raises(ValueError, match="compressed layout"):
        dense.save(tmp_path / "artifact", MLP(64, 10).state_dict(), card, {})
    assert not (tmp_path / "artifact").exists()
