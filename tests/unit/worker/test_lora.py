"""lmaas_worker.models.lora: LoRA adapters on a Hugging Face causal language model, the base frozen,
the model still sharded per decoder layer; target names that match no layer are a ConfigError naming
spec.peft.lora.targetModules."""

import pytest
import torch

from lmaas_api.errors import ConfigError
from lmaas_api.spec import HuggingFaceModel, LoraSpec
from lmaas_worker.data import shakespeare
from lmaas_worker.data.tokenizer import train_tokenizer
from lmaas_worker.models import sharding_units
from lmaas_worker.models.causal_lm import build_causal_lm
from lmaas_worker.models.lora import add_lora

LLAMA = {
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
}
GPT2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64}


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(shakespeare.text(), 600)


def built(tokenizer, config=LLAMA):
    torch.manual_seed(0)
    return build_causal_lm(HuggingFaceModel.model_validate({"config": config}), tokenizer, None, 64)


def test_only_the_adapters_train_and_they_start_as_a_no_op(tokenizer):
    plain = built(tokenizer)
    ids = torch.randint(0, len(tokenizer), (2, 16))
    with torch.no_grad():
        before = plain.module(ids)
    adapted = add_lora(plain, LoraSpec(r=4, target_modules=["q_proj", "v_proj"]))
    trainable = {name for name, p in adapted.module.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in name or ".lora_B." in name for name in trainable)
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in trainable} == {"q_proj", "v_proj"}
    with torch.no_grad():
        assert torch.equal(adapted.module(ids), before)  # B is zero: the base's logits until trained
    assert adapted.definition == plain.definition  # the card records the base model
    assert [type(unit).__name__ for unit in sharding_units(adapted.module)] == ["LlamaDecoderLayer"] * 2


def test_without_target_modules_peft_adapts_its_choice_for_the_family(tokenizer):
    for config, expected in ((LLAMA, {"q_proj", "v_proj"}), (GPT2, {"c_attn"})):
        lm = add_lora(built(tokenizer, config), LoraSpec()).module.lm
        assert set(lm.peft_config["default"].target_modules) == expected


@pytest.mark.parametrize(
    "targets, message",
    [
        (["q_proj", "no_such_layer"], "no_such_layer names no layer of the model; its linear layers: "),
        (["no_such_layer"], "not found in the base model"),
        (["mlp"], "is not supported"),
    ],
    ids=["one of several matches nothing", "none matches", "not a layer"],
)
def test_target_modules_peft_cannot_adapt_are_a_configuration_error_naming_the_field(tokenizer, targets, message):
    with pytest.raises(ConfigError) as error:
        add_lora(built(tokenizer), LoraSpec(target_modules=targets))
    assert error.value.field == "spec.peft.lora.targetModules" and message in str(error.value)
    assert "down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj" in str(error.value)
