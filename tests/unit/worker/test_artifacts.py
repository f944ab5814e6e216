"""lmaas_worker.artifacts: saving an artifact atomically, loading it back without pickles."""
import json
import pickle
import struct
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from lmaas_api import contract
from lmaas_api.spec import ArtifactCodePolicy
from lmaas_worker.artifacts import UnsafeArtifactError, load_model, save_artifact
from lmaas_api.errors import ConfigError
from lmaas_worker.models.mlp import MLP
from tests import artifact_code


def card_for(args):
    return {"format": contract.ARTIFACT_FORMAT, "model": {"builtin": "mlp", "factory": None, "args": args},
            "task": "classification", "dtype": "float32", "quantization": None, "producer": {"name": "unit"}}


@pytest.fixture
def artifact(tmp_path):
    torch.manual_seed(0)
    args = {"in_features": 64, "num_classes": 10, "hidden": [32]}
    model = MLP(**args)
    history = {"train": [[1, 2.3], [2, 1.9]], "eval": [[2, 0.5]], "evalMetric": "accuracy"}
    size = save_artifact(tmp_path / "artifact", model.state_dict(), card_for(args), {"accuracy": 0.5}, history)
    return tmp_path / "artifact", model, size


def test_an_artifact_reloads_into_a_module_with_the_same_outputs(artifact):
    path, model, size = artifact
    assert sorted(p.name for p in path.iterdir()) == ["curves.png", "metrics.json", "model.json", "model.safetensors"]
    assert size == (path / contract.WEIGHTS_FILE).stat().st_size
    assert (path / "curves.png").read_bytes().startswith(b"\x89PNG")
    loaded, card = load_model(path)
    assert card["format"] == contract.ARTIFACT_FORMAT and not loaded.training
    x = torch.randn(7, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_saving_again_replaces_the_artifact_and_leaves_no_temporary_directory(artifact, tmp_path):
    path, _, _ = artifact
    args = {"in_features": 64, "num_classes": 10, "hidden": [8]}
    save_artifact(path, MLP(**args).state_dict(), card_for(args), {}, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]
    assert json.loads((path / contract.MODEL_CARD_FILE).read_text())["model"]["args"]["hidden"] == [8]
    assert not (path / "curves.png").exists()


class Trap:
    """Unpickling this would create a file: the proof that nothing was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["extra.pt", "weights.pth", "pytorch_model.bin", "state.pkl"])
def test_an_artifact_with_a_pickle_file_is_refused_by_name(artifact, name):
    path, _, _ = artifact
    (path / name).write_bytes(b"anything")
    with pytest.raises(UnsafeArtifactError, match=name):
        load_model(path)


def test_pickle_bytes_under_an_innocent_name_are_refused_and_never_run(artifact, tmp_path):
    path, _, _ = artifact
    marker = tmp_path / "unpickled"
    (path / "notes.json").write_bytes(pickle.dumps(Trap(str(marker)), protocol=4))
    with pytest.raises(UnsafeArtifactError, match="notes.json"):
        load_model(path)
    assert not marker.exists()


def test_a_torch_save_archive_posing_as_safetensors_is_refused(artifact, tmp_path):
    path, model, _ = artifact
    torch.save(model.state_dict(), path / contract.WEIGHTS_FILE)
    assert zipfile.is_zipfile(path / contract.WEIGHTS_FILE)
    with pytest.raises(UnsafeArtifactError, match="model.safetensors"):
        load_model(path)


def test_a_raw_pickle_posing_as_safetensors_is_refused_and_never_run(artifact, tmp_path):
    path, _, _ = artifact
    marker = tmp_path / "unpickled"
    (path / contract.WEIGHTS_FILE).write_bytes(pickle.dumps(Trap(str(marker)), protocol=2))
    with pytest.raises(UnsafeArtifactError, match="model.safetensors"):
        load_model(path)
    assert not marker.exists()


def test_safetensors_whose_header_length_starts_like_a_pickle_still_load(artifact):
    path, model, _ = artifact
    # pad the metadata until the 8-byte header length begins with 0x80 0x02, like pickle protocol 2
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    for padding in range(4096):
        save_file(state, path / contract.WEIGHTS_FILE, metadata={"pad": "x" * padding})
        head = (path / contract.WEIGHTS_FILE).read_bytes()[:8]
        if head[:2] == b"\x80\x02":
            break
    assert struct.unpack("<Q", head)[0] == 0x0280
    loaded, _ = load_model(path)
    assert torch.equal(loaded.state_dict()["net.0.weight"], state["net.0.weight"])


def test_a_directory_without_a_model_card_is_not_an_artifact(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json"):
        load_model(tmp_path)


# --- code named by the model card ------------------------------------------------------------


def test_a_card_naming_a_shell_command_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = artifact_code.hostile(tmp_path / "artifact", marker)
    with pytest.raises(ConfigError, match=artifact_code.REFUSAL) as refused:
        load_model(path)
    assert artifact_code.HOW_TO_ALLOW in str(refused.value)
    assert not marker.exists()


def test_a_refused_factory_module_is_not_even_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "innocent_looking.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef build(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = artifact_code.user_factory(tmp_path / "artifact")
    card = json.loads((path / contract.MODEL_CARD_FILE).read_text())
    card["model"]["factory"] = "innocent_looking:build"
    (path / contract.MODEL_CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ConfigError, match='model.factory "innocent_looking:build"'):
        load_model(path, artifact_code=ArtifactCodePolicy(frozenset({artifact_code.USER_FACTORY})))
    assert not marker.exists()


@pytest.mark.parametrize("policy", [ArtifactCodePolicy(trust_all=True),
                                    ArtifactCodePolicy(frozenset({artifact_code.USER_FACTORY}))],
                         ids=["trustArtifactCode", "the spec's own factory"])
def test_a_user_factory_loads_when_the_resource_allows_it(tmp_path, policy):
    path = artifact_code.user_factory(tmp_path / "artifact")
    loaded, card = load_model(path, artifact_code=policy)
    assert type(loaded).__name__ == "SlowMLP" and card["model"]["factory"] == artifact_code.USER_FACTORY
    with pytest.raises(ConfigError, match="spec.trustArtifactCode"):
        load_model(path)


def test_a_builtin_model_loads_whatever_the_policy(tmp_path):
    path = artifact_code.builtin(tmp_path / "artifact")
    for policy in (ArtifactCodePolicy(), ArtifactCodePolicy(frozenset({"other.module:fn"}))):
        loaded, _ = load_model(path, artifact_code=policy)
        assert type(loaded) is MLP
