"""lmaas_worker.models.causal_lm: Hugging Face causal language models built from a config or a folder,
as modules that map token ids to logits, sharded per decoder layer; what transformers refuses is a
ConfigError naming the spec field."""

import pytest
import torch

from lmaas_api.errors import ConfigError
from lmaas_api.spec import HuggingFaceModel, TrainJobModel
from lmaas_worker.data import shakespeare
from lmaas_worker.data.tokenizer import train_tokenizer
from lmaas_worker.models import sharding_units
from lmaas_worker.models.causal_lm import build_causal_lm, greedy_continuation

FAMILIES = {
    "llama": (
        {
            "model_type": "llama",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 64,
        },
        "LlamaDecoderLayer",
    ),
    "gpt2": ({"model_type": "gpt2", "n_embd": 32, "n_layer": 3, "n_head": 4, "n_positions": 64}, "GPT2Block"),
    "qwen2": (
        {
            "model_type": "qwen2",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 64,
        },
        "Qwen2DecoderLayer",
    ),
}


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(shakespeare.text(), 600)


def hf(config, **options):
    return HuggingFaceModel.model_validate({"config": config, **options})


@pytest.mark.parametrize("family", FAMILIES)
def test_a_model_from_a_config_gives_logits_over_the_tokenizer_and_shards_per_decoder_layer(tokenizer, family):
    config, layer = FAMILIES[family]
    torch.manual_seed(3)
    built = build_causal_lm(hf(config), tokenizer, None, 64)
    ids = torch.randint(0, len(tokenizer), (2, 16))
    assert built.module(ids).shape == (2, 16, len(tokenizer))
    lm_config = built.module.lm.config
    assert (lm_config.vocab_size, lm_config.eos_token_id, lm_config.pad_token_id) == (
        len(tokenizer),
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    units = sharding_units(built.module)
    assert [type(unit).__name__ for unit in units] == [layer] * 3
    # the card records the config as used: with what the tokenizer decided
    assert built.definition == TrainJobModel(
        hf=hf({**config, "vocab_size": len(tokenizer), "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 1})
    )
    torch.manual_seed(3)
    again = build_causal_lm(hf(config), tokenizer, None, 64).module
    assert all(
        torch.equal(a, b) for a, b in zip(built.module.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_the_logits_at_a_position_never_depend_on_later_tokens(tokenizer):
    module = build_causal_lm(hf(FAMILIES["llama"][0]), tokenizer, None, 64).module.eval()
    ids = torch.randint(0, len(tokenizer), (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % len(tokenizer)
    with torch.no_grad():
        assert torch.allclose(module(ids)[0, :8], module(changed)[0, :8], atol=1e-5)


def test_dtype_attention_and_gradient_checkpointing_reach_the_model(tokenizer):
    built = build_causal_lm(
        hf(FAMILIES["llama"][0], dtype="bfloat16", attnImplementation="eager", gradientCheckpointing=True),
        tokenizer,
        None,
        64,
    )
    lm = built.module.lm
    assert {p.dtype for p in lm.parameters()} == {torch.bfloat16}
    assert lm.config._attn_implementation == "eager" and lm.is_gradient_checkpointing


def test_a_model_from_a_folder_keeps_its_weights(tokenizer, tmp_path):
    source = build_causal_lm(hf(FAMILIES["gpt2"][0]), tokenizer, None, 64).module.lm.eval()
    source.save_pretrained(tmp_path)
    built = build_causal_lm(HuggingFaceModel(uri="pvc://models/tiny"), tokenizer, tmp_path, 64)
    ids = torch.randint(0, len(tokenizer), (1, 10))
    with torch.no_grad():
        assert torch.allclose(built.module.eval()(ids), source(input_ids=ids).logits, atol=1e-6)


@pytest.mark.parametrize(
    "change,field,message",
    [
        (
            {"model_type": "no-such-model"},
            "spec.model.hf.config.model_type",
            "not a model type that transformers knows",
        ),
        ({"model_type": "t5"}, "spec.model.hf.config.model_type", "has no causal language model"),
        ({"hidden_size": 30}, "spec.model.hf.config", "transformers rejects it"),
        (
            {"max_position_embeddings": 32},
            "spec.dataset.sequenceLength",
            "above the model's max_position_embeddings (32)",
        ),
    ],
)
def test_what_transformers_refuses_is_a_configuration_error_naming_the_field(tokenizer, change, field, message):
    with pytest.raises(ConfigError) as error:
        build_causal_lm(hf({**FAMILIES["llama"][0], **change}), tokenizer, None, 64)
    assert error.value.field == field and message in str(error.value)
    assert len(str(error.value)) < 1000  # not transformers' list of every model type it knows


def test_a_folder_that_holds_no_model_names_the_uri(tokenizer, tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not loaded")  # a pickle is never a way in
    for folder in (tmp_path, None):
        with pytest.raises(ConfigError) as error:
            build_causal_lm(HuggingFaceModel(uri="pvc://models/tiny"), tokenizer, folder, 64)
        assert error.value.field == "spec.model.hf.uri"


def test_greedy_continuation_is_what_transformers_generates(tokenizer):
    torch.manual_seed(0)
    module = build_causal_lm(hf(FAMILIES["llama"][0]), tokenizer, None, 64).module
    prompt = tokenizer("From fairest creatures", add_special_tokens=False)["input_ids"]
    picked = greedy_continuation(module, prompt, 12, end_of_text=None)
    assert module.training  # left as it was
    generated = module.lm.eval().generate(
        torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt)),
        max_new_tokens=12,
        do_sample=False,
        eos_token_id=None,
    )
    assert picked == generated[0, len(prompt) :].tolist()
