"""lmaas_worker.artifacts.loading: an artifact loads back, in the format its card names, without pickles
and without code its card names unless the resource allows it; artifacts written before load too."""

import json
import pickle
import struct
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_api.errors import ConfigError
from lmaas_api.spec import ArtifactCodePolicy
from lmaas_worker.artifacts import UnsafeArtifactError, dense, load, load_float
from lmaas_worker.artifacts.files import refuse_pickles
from lmaas_worker.artifacts.quantize import dequantize_int8, quantize_int8
from lmaas_worker.models.mlp import MLP
from tests import artifact_code


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
    model = MLP(**args)
    history = {"train": [[1, 2.3], [2, 1.9]], "eval": [[2, 0.5]], "evalMetric": "accuracy"}
    size = dense.save(tmp_path / "artifact", model.state_dict(), card_for(args), {"accuracy": 0.5}, history)
    return tmp_path / "artifact", model, size


def test_an_artifact_reloads_into_a_module_with_the_same_outputs(artifact):
    path, model, size = artifact
    assert sorted(p.name for p in path.iterdir()) == ["curves.png", "metrics.json", "model.json", "model.safetensors"]
    assert size == (path / contract.WEIGHTS_FILE).stat().st_size
    assert (path / "curves.png").read_bytes().startswith(b"\x89PNG")
    loaded, card = load(path)
    assert card == card_for({"in_features": 64, "num_classes": 10, "hidden": [32]})
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = torch.randn(7, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    trainable, state = load_float(path)
    assert all(p.requires_grad for p in trainable.parameters())
    assert torch.equal(state["net.0.weight"], model.state_dict()["net.0.weight"])


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
        load(path)


def test_pickle_bytes_under_an_innocent_name_are_refused_and_never_run(artifact, tmp_path):
    path, _, _ = artifact
    marker = tmp_path / "unpickled"
    (path / "notes.json").write_bytes(pickle.dumps(Trap(str(marker)), protocol=4))
    with pytest.raises(UnsafeArtifactError, match="notes.json"):
        load(path)
    assert not marker.exists()


def test_a_torch_save_archive_posing_as_safetensors_is_refused(artifact, tmp_path):
    path, model, _ = artifact
    torch.save(model.state_dict(), path / contract.WEIGHTS_FILE)
    assert zipfile.is_zipfile(path / contract.WEIGHTS_FILE)
    with pytest.raises(UnsafeArtifactError, match="model.safetensors"):
        load(path)


def test_a_raw_pickle_posing_as_safetensors_is_refused_and_never_run(artifact, tmp_path):
    path, _, _ = artifact
    marker = tmp_path / "unpickled"
    (path / contract.WEIGHTS_FILE).write_bytes(pickle.dumps(Trap(str(marker)), protocol=2))
    with pytest.raises(UnsafeArtifactError, match="model.safetensors"):
        load(path)
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
    loaded, _ = load(path)
    assert torch.equal(loaded.state_dict()["net.0.weight"], state["net.0.weight"])


def test_a_weight_file_of_a_sharded_folder_whose_header_length_starts_like_a_pickle_is_accepted(tmp_path):
    # a small shard's header is often 640 bytes long: its length begins 0x80 0x02, like pickle protocol 2
    for padding in range(4096):
        save_file({"w": torch.zeros(3)}, tmp_path / "model-00001-of-00002.safetensors", metadata={"pad": "x" * padding})
        if (tmp_path / "model-00001-of-00002.safetensors").read_bytes()[:2] == b"\x80\x02":
            break
    refuse_pickles(tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(pickle.dumps([1], protocol=2))
    with pytest.raises(UnsafeArtifactError, match="model-00002-of-00002.safetensors"):
        refuse_pickles(tmp_path)


def test_a_directory_without_a_model_card_is_not_an_artifact(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json"):
        load(tmp_path)


# --- code named by the model card ------------------------------------------------------------


def test_a_card_naming_a_shell_command_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = artifact_code.hostile(tmp_path / "artifact", marker)
    with pytest.raises(ConfigError, match=artifact_code.REFUSAL) as refused:
        load(path)
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
        load(path, artifact_code=ArtifactCodePolicy(frozenset({artifact_code.USER_FACTORY})))
    assert not marker.exists()


@pytest.mark.parametrize(
    "policy",
    [ArtifactCodePolicy(trust_all=True), ArtifactCodePolicy(frozenset({artifact_code.USER_FACTORY}))],
    ids=["trustArtifactCode", "the spec's own factory"],
)
def test_a_user_factory_loads_when_the_resource_allows_it(tmp_path, policy):
    path = artifact_code.user_factory(tmp_path / "artifact")
    loaded, card = load(path, artifact_code=policy)
    assert type(loaded).__name__ == "SlowMLP" and card.model.factory == artifact_code.USER_FACTORY
    with pytest.raises(ConfigError, match="spec.trustArtifactCode"):
        load(path)


def test_a_builtin_model_loads_whatever_the_policy(tmp_path):
    path = artifact_code.builtin(tmp_path / "artifact")
    for policy in (ArtifactCodePolicy(), ArtifactCodePolicy(frozenset({"other.module:fn"}))):
        loaded, _ = load(path, artifact_code=policy)
        assert type(loaded) is MLP


def test_a_quantized_card_without_a_compression_section_is_refused_naming_it(artifact):
    path, _, _ = artifact
    card = json.loads((path / contract.MODEL_CARD_FILE).read_text())
    (path / contract.MODEL_CARD_FILE).write_text(json.dumps({**card, "quantization": {"scheme": "int8"}}))
    with pytest.raises(ValueError, match="model.json: quantization int8 without a compression section"):
        load(path)


# --- artifacts written before: the files as lmaas wrote them, byte for byte ---------------------

DIGITS_INPUT = {
    "shape": [64],
    "dtype": "float32",
    "layout": "8x8 image, row-major",
    "preprocessing": {"divideBy": 16.0, "rawRange": [0, 16]},
}
MLP_ARGS = {"hidden": [32], "num_classes": 10, "in_features": 64}


def trained_card():
    """The card a TrainJob wrote (keys and order as lmaas_worker.train.finish had them)."""
    return {
        "format": "lmaas.artifact/v1",
        "model": {"builtin": "mlp", "factory": None, "args": MLP_ARGS},
        "task": "classification",
        "input": DIGITS_INPUT,
        "numClasses": 10,
        "classLabels": [str(d) for d in range(10)],
        "vocab": None,
        "dtype": "float32",
        "quantization": None,
        "parameters": 2410,
        "dataset": {"builtin": "digits", "validationFraction": 0.2, "seed": 0},
        "producer": {"kind": "TrainJob", "name": "mlp", "namespace": "t", "uid": "u-1", "generation": 2},
        "createdAt": "2026-12-06T04:23:04Z",
        "framework": {"torch": "2.15.0"},
    }


def compressed_card():
    """The card a CompressJob wrote for 50% unstructured pruning then int8 (compress.pipeline's keys)."""
    layer = {
        "kind": "Linear",
        "stored": "int8",
        "compute": "float32",
        "kernel": "float32 on weights dequantized at load",
    }
    return {
        **trained_card(),
        "quantization": {
            "scheme": "int8",
            "symmetric": True,
            "granularity": "per-channel",
            "layers": {"net.0": layer, "net.2": layer},
        },
        "producer": {"kind": "CompressJob", "name": "c1", "namespace": "t"},
        "createdAt": "2026-12-06T04:23:15Z",
        "sparsity": {
            "structure": "unstructured",
            "scope": "global",
            "target": 0.5,
            "iterations": 1,
            "format": "bitmask",
        },
        "compression": {
            "format": "lmaas.compressed/v1",
            "tensors": {
                "net.0.weight": {"shape": [32, 64], "quantization": "int8", "layout": "dense"},
                "net.2.weight": {"shape": [10, 32], "quantization": "int8", "layout": "bitmask"},
            },
            "sizes": {},
        },
        "source": {"producer": trained_card()["producer"], "model": trained_card()["model"]},
    }


def _write_as_before(directory, tensors, card):
    directory.mkdir()
    save_file(tensors, directory / contract.WEIGHTS_FILE, metadata={"format": "pt", "lmaas": "lmaas.artifact/v1"})
    (directory / contract.MODEL_CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (directory / contract.METRICS_FILE).write_text("{}\n")


def _present(value):
    """A card's JSON without its nulls: what a card says, whichever keys its writer left out."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    return [_present(v) for v in value] if isinstance(value, list) else value


def test_a_trained_artifact_written_before_loads_and_its_card_keeps_every_value(tmp_path):
    torch.manual_seed(0)
    model = MLP(**MLP_ARGS).eval()
    _write_as_before(tmp_path / "artifact", {k: v.contiguous() for k, v in model.state_dict().items()}, trained_card())
    loaded, card = load(tmp_path / "artifact")
    x = torch.randn(5, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert card.input.shape == [64] and card.num_classes == 10 and card.dataset.seed == 0
    assert card.producer.name == "mlp" and card.model.args == MLP_ARGS and card.compression is None
    # every value kept; the layout, which such a card does not name, is lmaas's own
    assert _present(json.loads(card.to_json())) == {**_present(trained_card()), "layout": "lmaas"}


def test_a_compressed_artifact_written_before_loads_and_its_card_keeps_every_value(tmp_path):
    torch.manual_seed(0)
    model = MLP(**MLP_ARGS).eval()
    state = model.state_dict()
    tensors = {"net.0.bias": state["net.0.bias"], "net.2.bias": state["net.2.bias"]}
    q0, tensors["net.0.weight.scale"] = quantize_int8(state["net.0.weight"])
    tensors["net.0.weight.values"] = q0
    weight2 = state["net.2.weight"].clone()
    weight2[weight2.abs() < weight2.abs().median()] = 0
    q2, tensors["net.2.weight.scale"] = quantize_int8(weight2)
    kept = q2.reshape(-1) != 0
    bits = torch.nn.functional.pad(kept.to(torch.uint8), (0, (-kept.numel()) % 8)).reshape(-1, 8)
    packed = (bits << torch.arange(8, dtype=torch.uint8)).sum(1, dtype=torch.int32)  # one bit per weight, LSB first
    tensors["net.2.weight.mask"] = packed.to(torch.uint8)
    tensors["net.2.weight.values"] = q2.reshape(-1)[kept]
    _write_as_before(tmp_path / "artifact", tensors, compressed_card())

    loaded, card = load(tmp_path / "artifact")
    expected = MLP(**MLP_ARGS).eval()
    expected.load_state_dict(
        {
            **state,
            "net.0.weight": dequantize_int8(q0, tensors["net.0.weight.scale"]),
            "net.2.weight": dequantize_int8(q2, tensors["net.2.weight.scale"]),
        }
    )
    x = torch.randn(5, 64)
    with torch.inference_mode():
        assert torch.allclose(loaded(x), expected(x), atol=1e-6)
    assert card.quantization.scheme == "int8" and card.sparsity.format == "bitmask"
    assert card.compression.tensors["net.2.weight"].layout == "bitmask" and card.source.producer.kind == "TrainJob"
    assert _present(json.loads(card.to_json())) == {**_present(compressed_card()), "layout": "lmaas"}
