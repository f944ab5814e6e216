"""lmaas_api.card: the model card read and written the same way by every role, with errors that name
the file and the field."""

import json

import pytest

from lmaas_api import contract
from lmaas_api.card import Compression, LayerSize, ModelCard, StoredTensor, read_card
from lmaas_api.errors import ConfigError


def card_json(**fields):
    return {
        "format": contract.ARTIFACT_FORMAT,
        "model": {"builtin": "mlp", "factory": None, "args": {"hidden": [8]}},
        "task": "classification",
        **fields,
    }


def write(directory, card):
    (directory / contract.MODEL_CARD_FILE).write_text(json.dumps(card) if isinstance(card, dict) else card)
    return directory


def test_a_card_reads_into_typed_fields_from_its_camel_case_keys(tmp_path):
    card = read_card(
        write(
            tmp_path,
            card_json(
                numClasses=10,
                classLabels=["a", "b"],
                createdAt="2026-12-06T04:23:04Z",
                input={"shape": [64], "dtype": "float32", "layout": "8x8 image"},
            ),
        )
    )
    assert card.num_classes == 10 and card.class_labels == ["a", "b"] and card.created_at == "2026-12-06T04:23:04Z"
    assert card.model.args == {"hidden": [8]} and card.input.shape == [64] and card.input.layout == "8x8 image"
    assert card.dtype == "float32" and card.quantization is None and card.compression is None


def test_every_field_at_fault_is_named_with_the_file(tmp_path):
    compression = {"format": "lmaas.compressed/v1", "tensors": {"net.0.weight": {"shape": [4, 4], "layout": "csr"}}}
    write(tmp_path, card_json(format="lmaas.artifact/v9", numClasses="ten", compression=compression, colour="red"))
    with pytest.raises(ConfigError) as error:
        read_card(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / contract.MODEL_CARD_FILE}: ")
    assert "format: Input should be 'lmaas.artifact/v1' (got \"lmaas.artifact/v9\")" in message
    assert "numClasses: Input should be a valid integer" in message
    assert "compression.tensors.net.0.weight.layout: Input should be 'dense' or 'bitmask' (got \"csr\")" in message
    assert "colour: Extra inputs are not permitted" in message


def test_a_card_without_a_model_or_task_is_refused(tmp_path):
    write(tmp_path, {"format": contract.ARTIFACT_FORMAT})
    with pytest.raises(ConfigError, match="model: Field required; task: Field required"):
        read_card(tmp_path)


def test_a_card_that_is_not_json_is_refused_naming_the_file(tmp_path):
    write(tmp_path, "{not json")
    with pytest.raises(ConfigError, match=f"{tmp_path / contract.MODEL_CARD_FILE}: Invalid JSON"):
        read_card(tmp_path)


def test_a_directory_without_a_card_is_not_an_artifact(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an lmaas artifact \\(no model.json\\)"):
        read_card(tmp_path)


def test_a_written_card_reads_back_equal_with_the_keys_on_disk(tmp_path):
    card = ModelCard.model_validate(card_json()).model_copy(
        update={
            "compression": Compression(
                format="lmaas.compressed/v1",
                tensors={"net.0.weight": StoredTensor(shape=[4, 64], layout="dense")},
                sizes={"net.0": LayerSize(inputs=64, outputs=4)},
            )
        }
    )
    write(tmp_path, card.to_json())
    assert read_card(tmp_path) == card
    on_disk = json.loads((tmp_path / contract.MODEL_CARD_FILE).read_text())
    assert on_disk["compression"]["sizes"] == {"net.0": {"in": 64, "out": 4}}
    assert on_disk["compression"]["tensors"]["net.0.weight"]["groupSize"] is None
    assert on_disk["numClasses"] is None and on_disk["createdAt"] is None


def test_a_card_never_holds_a_nan():
    card = ModelCard.model_validate(
        card_json(
            sparsity={
                "structure": "unstructured",
                "scope": "global",
                "target": float("nan"),
                "iterations": 1,
                "format": "bitmask",
            }
        )
    )
    with pytest.raises(ValueError, match="JSON compliant"):
        card.to_json()


def test_a_hugging_face_card_records_the_model_it_was_trained_from_and_its_layout(tmp_path):
    hf = {
        "config": {"model_type": "llama", "hidden_size": 64},
        "uri": None,
        "dtype": "bfloat16",
        "attnImplementation": "sdpa",
        "gradientCheckpointing": False,
    }
    card = read_card(
        write(
            tmp_path,
            card_json(
                layout="huggingface",
                task="language-modeling",
                model={"builtin": None, "factory": None, "args": None, "hf": hf},
            ),
        )
    )
    assert card.layout == "huggingface" and card.model.hf.config.model_type == "llama"
    assert card.model.hf.config.model_extra == {"hidden_size": 64} and card.model.hf.dtype == "bfloat16"
    write(tmp_path, card.to_json())
    assert read_card(tmp_path) == card
    assert read_card(write(tmp_path, card_json())).layout == "lmaas"  # a card that does not say
    write(tmp_path, card_json(layout="onnx"))
    with pytest.raises(ConfigError, match="layout: Input should be 'lmaas' or 'huggingface'"):
        read_card(tmp_path)
