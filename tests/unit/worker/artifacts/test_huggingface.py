"""lmaas_worker.artifacts.huggingface: a trained language model's artifact is a Hugging Face folder that
transformers loads as it is, and lmaas's loader picks it from the card. Written here by a process
group of one, as a single-process run writes it (tests/worker write it from several ranks)."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmaas_api import contract
from lmaas_api.card import ModelCard
from lmaas_api.errors import ConfigError
from lmaas_api.resource import CustomResource
from lmaas_api.spec import CompressJobSpec, HuggingFaceModel
from lmaas_worker.artifacts import huggingface, load, load_float
from lmaas_worker.compress.config import CompressConfig
from lmaas_worker.compress.measure import LatencySettings
from lmaas_worker.compress.pipeline import build_compression
from lmaas_worker.data import shakespeare
from lmaas_worker.data.tokenizer import train_tokenizer
from lmaas_worker.distributed import close_distributed, init_distributed
from lmaas_worker.models.causal_lm import build_causal_lm
from lmaas_worker.serve.model import open_model

GPT2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64}  # tied embeddings and head
WEIGHTS = "model-00001-of-00001.safetensors"


@pytest.fixture(scope="module")
def process_group():
    init_distributed({})
    yield
    close_distributed()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, process_group):
    """A gpt2 written by the one rank of a single-process run."""
    tokenizer = train_tokenizer(shakespeare.text(), 600)
    torch.manual_seed(0)
    built = build_causal_lm(HuggingFaceModel.model_validate({"config": GPT2}), tokenizer, None, 64)
    module = built.module.eval()
    with torch.no_grad():
        module.lm.lm_head.weight.mul_(1.5)  # not the initial weights; tied, the embeddings change with it
    card = ModelCard(
        format=contract.ARTIFACT_FORMAT,
        layout="huggingface",
        model=built.definition,
        task="language-modeling",
        input={"shape": [64], "dtype": "int64"},
        parameters=12,
    )
    directory = tmp_path_factory.mktemp("artifact") / "artifact"
    size = huggingface.save(
        directory,
        module,
        module.lm,
        tokenizer,
        card,
        {"perplexity": 12.5},
        {"train": [[1, 5.0]], "eval": [[1, 12.5]], "evalMetric": "perplexity", "learningRate": []},
        world_size=1,
        is_main=True,
    )
    return directory, module, tokenizer, size, built.definition


def test_the_folder_holds_the_model_its_tokenizer_and_lmaas_files(trained):
    directory, _, _, size, _ = trained
    assert sorted(p.name for p in directory.iterdir()) == [
        "chat_template.jinja",
        "config.json",
        "curves.png",
        "generation_config.json",
        "metrics.json",
        WEIGHTS,
        "model.json",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert size == (directory / WEIGHTS).stat().st_size
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    # the head is tied to the embeddings: stored once, under the embeddings' name, as save_pretrained does
    assert "transformer.wte.weight" in index["weight_map"] and "lm_head.weight" not in index["weight_map"]
    assert set(index["weight_map"].values()) == {WEIGHTS}
    assert json.loads((directory / "config.json").read_text())["model_type"] == "gpt2"
    assert json.loads((directory / "metrics.json").read_text()) == {"perplexity": 12.5}
    assert json.loads((directory / "model.json").read_text())["layout"] == "huggingface"


def test_transformers_loads_it_as_it_is_with_the_trained_weights(trained):
    directory, module, tokenizer, _, _ = trained
    lm = AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True)
    loaded_tokenizer = AutoTokenizer.from_pretrained(directory)
    ids = torch.tensor([loaded_tokenizer("Thy youth's proud livery")["input_ids"]])
    assert ids.tolist() == [tokenizer("Thy youth's proud livery")["input_ids"]]
    with torch.no_grad():
        assert torch.allclose(lm(input_ids=ids).logits, module(ids), atol=1e-6)
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight  # still tied
    assert lm.generation_config.eos_token_id == tokenizer.eos_token_id


def test_lmaas_loads_it_by_its_card_as_ids_to_logits(trained):
    directory, module, _, _, definition = trained
    loaded, card = load(directory)
    assert card.layout == "huggingface" and card.model == definition and card.model.hf.config.model_type == "gpt2"
    ids = torch.randint(0, 600, (2, 9))
    with torch.no_grad():
        assert torch.allclose(loaded(ids), module(ids), atol=1e-6)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    trainable, state = load_float(directory)
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())
    assert {t.dtype for t in state.values()} == {torch.float32}


def test_a_card_of_another_layout_is_not_written_as_a_hugging_face_folder(trained, tmp_path):
    directory, module, tokenizer, _, _ = trained
    card = ModelCard.model_validate_json((directory / "model.json").read_text()).model_copy(update={"layout": "lmaas"})
    with pytest.raises(ValueError, match="layout 'lmaas'"):
        huggingface.save(tmp_path / "out", module, module.lm, tokenizer, card, {}, None, 1, True)


def test_the_runtimes_that_cannot_take_the_folder_yet_refuse_it_by_name(trained, tmp_path):

    directory = trained[0]
    with pytest.raises(ConfigError, match="huggingface folder, which the lmaas runtime does not serve yet") as served:
        open_model(directory, None)
    assert served.value.field == "spec.model"
    spec = CompressJobSpec.parse({"model": {"uri": "pvc://c/p"}, "steps": [{"quantize": {"scheme": "int8"}}]})
    resource = CustomResource("CompressJob", "c", "ns", "u", None, spec)
    config = CompressConfig(resource=resource, output_dir=tmp_path, output_uri=None, input_dir=directory)
    with pytest.raises(ConfigError, match="huggingface folder, which CompressJob cannot compress yet"):
        build_compression(config, LatencySettings.from_env())


def test_a_truncated_weights_file_is_a_configuration_error_naming_the_uri(trained, tmp_path):

    directory, _, tokenizer, _, _ = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in directory.iterdir():
        data = path.read_bytes()
        (broken / path.name).write_bytes(data[:100] if path.name == WEIGHTS else data)
    with pytest.raises(ConfigError) as error:
        build_causal_lm(HuggingFaceModel.model_validate({"uri": "pvc://c/m"}), tokenizer, broken, 64)
    assert error.value.field == "spec.model.hf.uri"


def test_flash_attention_without_its_package_is_refused_rather_than_downloaded(trained):

    tokenizer = trained[2]
    hf = HuggingFaceModel.model_validate({"config": GPT2, "attnImplementation": "flash_attention_2"})
    with pytest.raises(ConfigError, match="flash-attn package") as error:
        build_causal_lm(hf, tokenizer, None, 64)
    assert error.value.field == "spec.model.hf.attnImplementation"
