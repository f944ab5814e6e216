"""lmaas_worker.artifacts.adapter: a LoRA run's artifact is the adapter folder peft writes, which peft
loads onto the base model; beside it the base (when it exists nowhere else) and the merged model."""

import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from lmaas_api import contract
from lmaas_api.card import Adapter, ModelCard
from lmaas_api.errors import ConfigError
from lmaas_api.spec import HuggingFaceModel, LoraSpec, TrainJobModel
from lmaas_worker.artifacts import adapter, load
from lmaas_worker.data import shakespeare
from lmaas_worker.data.tokenizer import train_tokenizer
from lmaas_worker.models.causal_lm import build_causal_lm
from lmaas_worker.models.lora import add_lora
from lmaas_worker.serve.model import open_model

GPT2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64}  # tied embeddings and head


def card_of(module, hf: dict, **where) -> ModelCard:
    lm = module.lm
    return ModelCard(
        format=contract.ARTIFACT_FORMAT,
        layout="peft",
        model=TrainJobModel(hf=HuggingFaceModel.model_validate(hf)),
        task="language-modeling",
        input={"shape": [64], "dtype": "int64"},
        adapter=Adapter(
            method="lora",
            r=4,
            alpha=8,
            dropout=0.0,
            target_modules=sorted(lm.peft_config["default"].target_modules),
            trainable_parameters=sum(p.numel() for p in lm.parameters() if p.requires_grad),
            **where,
        ),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A gpt2 from a config with trained-looking adapters, written from its full state dict with its
    base and the merged model, as rank 0 holds it after training."""
    tokenizer = train_tokenizer(shakespeare.text(), 600)
    torch.manual_seed(0)
    built = add_lora(
        build_causal_lm(HuggingFaceModel.model_validate({"config": GPT2}), tokenizer, None, 64), LoraSpec(r=4, alpha=8)
    )
    module = built.module.eval()
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if ".lora_B." in name:
                parameter.normal_(std=0.1)  # B starts at zero: adapters that would change nothing
    state = {name: tensor.clone() for name, tensor in module.state_dict().items()}
    directory = tmp_path_factory.mktemp("artifact") / "artifact"
    card = card_of(module, {"config": GPT2}, base_path=adapter.BASE_FOLDER, merged_path=adapter.MERGED_FOLDER)
    size = adapter.save(directory, state, module.lm.config, tokenizer, card, {"perplexity": 40.0})
    return directory, module, state, size


def test_the_folder_is_the_adapter_with_the_tokenizer_lmaas_files_the_base_and_the_merged_model(trained):
    directory, _, _, size = trained
    assert sorted(p.name for p in directory.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "base",
        "chat_template.jinja",
        "merged",
        "metrics.json",
        "model.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert size == (directory / "adapter_model.safetensors").stat().st_size
    hugging_face_folder = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]
    for folder in ("base", "merged"):
        assert set(hugging_face_folder) <= {p.name for p in (directory / folder).iterdir()}
    config = json.loads((directory / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["target_modules"]) == (4, 8, ["c_attn"])
    assert config["base_model_name_or_path"] is None  # no uri: the base is the folder base/
    assert json.loads((directory / "model.json").read_text())["adapter"]["basePath"] == "base"


def test_peft_loads_the_adapter_onto_the_base_and_the_merged_model_computes_the_same(trained):
    directory, module, state, _ = trained
    ids = torch.randint(0, 600, (2, 12))
    with torch.no_grad():
        expected = module(ids)
        base = AutoModelForCausalLM.from_pretrained(directory / "base")
        assert not torch.allclose(base(input_ids=ids).logits, expected, atol=1e-3)  # the adapters matter
        adapted = PeftModel.from_pretrained(base, directory)
        assert torch.allclose(adapted(input_ids=ids).logits, expected, atol=1e-5)
        merged = AutoModelForCausalLM.from_pretrained(directory / "merged")
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)
    assert merged.get_output_embeddings().weight is merged.get_input_embeddings().weight  # still tied
    # writing merged copies of the weights: the trained state is as it was
    assert all(torch.equal(tensor, module.state_dict()[name]) for name, tensor in state.items())


def test_a_base_from_a_uri_is_named_not_copied_and_nothing_is_merged_unless_asked(trained, tmp_path):
    _, module, state, _ = trained
    tokenizer = train_tokenizer(shakespeare.text(), 600)
    card = card_of(module, {"uri": "pvc://models/base"}, base_uri="pvc://models/base")
    adapter.save(tmp_path / "a", state, module.lm.config, tokenizer, card, {})
    assert not {"base", "merged", "model.safetensors"} & {p.name for p in (tmp_path / "a").iterdir()}
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "pvc://models/base"


def test_an_adapter_is_not_loaded_as_a_model_by_itself(trained):
    directory = trained[0]
    with pytest.raises(ConfigError, match="PeftModel.from_pretrained") as loaded:
        load(directory)
    assert loaded.value.field == str(directory / contract.MODEL_CARD_FILE)
    with pytest.raises(ConfigError, match="peft folder, which the lmaas runtime does not serve yet"):
        open_model(directory, None)
