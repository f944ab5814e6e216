"""lmaas_worker.data.chat: conversations rendered with the chat template, one padded block each, the
loss on the assistant's tokens alone; an over-long conversation cut in the open, or refused."""

import logging

import pytest
import torch
from transformers import AutoTokenizer

from lmaas_api.errors import ConfigError
from lmaas_worker.data import IGNORE_INDEX, shakespeare
from lmaas_worker.data.chat import chat_blocks
from lmaas_worker.data.sources import Conversation
from lmaas_worker.data.tokenizer import TURN_END, TURN_START, train_tokenizer

FIELD = "spec.tokenizer"


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(shakespeare.text(), 600)


def conversation(line, *turns) -> Conversation:
    return Conversation(line, [{"role": role, "content": content} for role, content in turns])


TALK = conversation(
    7,
    ("system", "Answer with one line."),
    ("user", "Continue: Shall I compare thee to a summer's day?"),
    ("assistant", "Thou art more lovely and more temperate:"),
    ("user", "And then?"),
    ("assistant", "Rough winds do shake the darling buds of May,"),
)


def learnt_text(tokenizer, targets: torch.Tensor) -> str:
    return tokenizer.decode(targets[targets != IGNORE_INDEX])


def test_the_trained_tokenizer_renders_chat_ml_and_asks_for_a_reply(tokenizer):
    prompt = tokenizer.apply_chat_template(TALK.messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == (
        f"{TURN_START}system\nAnswer with one line.{TURN_END}\n"
        f"{TURN_START}user\nContinue: Shall I compare thee to a summer's day?{TURN_END}\n{TURN_START}assistant\n"
    )
    assert len(tokenizer(TURN_START + TURN_END, add_special_tokens=False)["input_ids"]) == 2  # one token each


def test_only_the_assistants_replies_and_their_turn_ends_carry_a_loss(tokenizer):
    inputs, targets = chat_blocks([TALK], tokenizer, 128, "training", FIELD)
    assert inputs.shape == targets.shape == (1, 128) and inputs.dtype == targets.dtype == torch.int64
    assert learnt_text(tokenizer, targets[0]) == (
        f"Thou art more lovely and more temperate:{TURN_END}Rough winds do shake the darling buds of May,{TURN_END}"
    )
    # targets are the next inputs wherever they count
    counted = (targets[0, :-1] != IGNORE_INDEX).nonzero().flatten()
    assert torch.equal(targets[0, counted], inputs[0, counted + 1])


def test_a_conversation_is_one_block_padded_on_the_right(tokenizer):
    short = conversation(1, ("user", "Continue: Music to hear,"), ("assistant", "why hear'st thou music sadly?"))
    inputs, targets = chat_blocks([short, TALK], tokenizer, 128, "training", FIELD)
    ids = tokenizer.apply_chat_template(short.messages, return_dict=True)["input_ids"]
    assert inputs[0, : len(ids) - 1].tolist() == ids[:-1]
    assert (inputs[0, len(ids) - 1 :] == tokenizer.pad_token_id).all()
    assert (targets[0, len(ids) - 1 :] == IGNORE_INDEX).all()
    assert learnt_text(tokenizer, targets[0]) == f"why hear'st thou music sadly?{TURN_END}"


def test_a_conversation_longer_than_a_block_is_cut_and_the_log_says_so(tokenizer, caplog):
    full = len(tokenizer.apply_chat_template(TALK.messages, return_dict=True)["input_ids"])
    with caplog.at_level(logging.WARNING, logger="lmaas_worker.data.chat"):
        inputs, targets = chat_blocks([TALK], tokenizer, full - 8, "held-out", FIELD)
    assert inputs.shape == (1, full - 8)
    assert "1 of the 1 held-out conversations are longer than a block" in caplog.text
    assert f"line 7, has {full} tokens" in caplog.text
    assert learnt_text(tokenizer, targets[0]).startswith(f"Thou art more lovely and more temperate:{TURN_END}")


def test_a_cut_that_leaves_the_assistant_nothing_to_say_names_sequence_length_and_the_line(tokenizer):
    with pytest.raises(ConfigError) as error:
        chat_blocks([TALK], tokenizer, 16, "training", FIELD)
    assert error.value.field == "spec.dataset.sequenceLength" and "line 7" in str(error.value)


def test_a_tokenizer_whose_template_cannot_mark_the_assistant_is_refused_by_name(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    unmarked = AutoTokenizer.from_pretrained(tmp_path)
    unmarked.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    without = AutoTokenizer.from_pretrained(tmp_path)
    without.chat_template = None
    for broken, message in ((unmarked, "does not mark the assistant's replies"), (without, "cannot render")):
        with pytest.raises(ConfigError) as error:
            chat_blocks([TALK], broken, 96, "training", "spec.model.hf.uri")
        assert error.value.field == "spec.model.hf.uri" and message in str(error.value)
