"""lmaas_worker.data.text: documents packed into blocks whose targets are the next tokens, and the
unigram baseline a language model must beat."""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from lmaas_api.errors import ConfigError
from lmaas_api.spec import TrainJobDataset
from lmaas_worker.data import shakespeare, text
from lmaas_worker.data.cache import TokenCache
from lmaas_worker.data.language import language_data
from lmaas_worker.data.sources import read_split
from lmaas_worker.data.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(shakespeare.text(), 600)


def test_blocks_are_consecutive_and_each_target_is_the_next_token():
    ids = torch.arange(23)
    blocks = text.packed(ids, 5)
    inputs, targets = blocks.tensors
    assert inputs.tolist() == [list(range(s, s + 5)) for s in (0, 5, 10, 15)]  # 20, 21 and 22 left over
    assert torch.equal(targets, inputs + 1)  # across block ends too: block 0's last target is block 1's first input


def test_the_text_becomes_blocks_of_token_ids_ended_by_end_of_text(tokenizer, tmp_path):
    split = read_split(TrainJobDataset(builtin="shakespeare", sequence_length=32, validation_fraction=0.2), None)
    data = language_data(split, tokenizer, 32, TokenCache(tmp_path), 0, "spec.tokenizer")
    assert isinstance(data.train, TensorDataset) and data.task == "language-modeling"
    assert data.tokenizer is tokenizer and data.input_spec["shape"] == [32]
    assert data.train.tensors[0].dtype == torch.int64 and data.train.tensors[0].shape[1] == 32
    held_out_ids = text.token_ids(split.held_out, tokenizer)
    assert held_out_ids[-1] == tokenizer.eos_token_id
    assert len(data.val) == (len(held_out_ids) - 1) // 32
    corpus = shakespeare.text()
    assert tokenizer.decode(data.train.tensors[0][0]) == tokenizer.decode(text.token_ids([corpus], tokenizer)[:32])


def test_records_are_encoded_one_after_another_each_ended_by_end_of_text(tokenizer):
    ids = text.token_ids(["Sweets with sweets war not,", "joy delights in joy."], tokenizer)
    ends = (ids == tokenizer.eos_token_id).nonzero().flatten().tolist()
    assert len(ends) == 2 and ends[1] == len(ids) - 1
    assert tokenizer.decode(ids[: ends[0]]) == "Sweets with sweets war not,"
    assert tokenizer.decode(ids[ends[0] + 1 : ends[1]]) == "joy delights in joy."


def test_a_text_too_short_for_one_block_names_sequence_length(tokenizer):
    short = text.token_ids(["Music to hear, why hear'st thou music sadly?\n"], tokenizer)
    with pytest.raises(ConfigError) as error:
        text.checked_length(short, 64, "training")
    assert error.value.field == "spec.dataset.sequenceLength" and "training text" in str(error.value)
    assert torch.equal(text.checked_length(short, 8, "training"), short)


def test_the_unigram_baseline_is_the_held_out_perplexity_of_smoothed_training_counts():
    train = TensorDataset(torch.zeros(2, 3, dtype=torch.int64), torch.tensor([[0, 0, 1], [0, 0, 2]]))
    held_out = TensorDataset(torch.zeros(1, 2, dtype=torch.int64), torch.tensor([[0, 3]]))
    # counts + 1 over a vocabulary of 4: token 0 has 5 of 10, token 3 has 1 of 10
    assert text.unigram_perplexity(train, held_out, 4) == pytest.approx(math.exp(-(math.log(0.5) + math.log(0.1)) / 2))
    uniform = TensorDataset(torch.zeros(1, 4, dtype=torch.int64), torch.tensor([[0, 1, 2, 3]]))
    assert text.unigram_perplexity(uniform, uniform, 4) == pytest.approx(4)


def test_the_unigram_baseline_leaves_out_targets_that_carry_no_loss():
    train = TensorDataset(torch.zeros(2, 3, dtype=torch.int64), torch.tensor([[-100, 0, 1], [0, 0, 2]]))
    held_out = TensorDataset(torch.zeros(1, 3, dtype=torch.int64), torch.tensor([[0, 3, -100]]))
    # counts + 1 over 4 tokens: 0 has 4 of 9 (the ignored target is not a token), 3 has 1 of 9
    assert text.unigram_perplexity(train, held_out, 4) == pytest.approx(
        math.exp(-(math.log(4 / 9) + math.log(1 / 9)) / 2)
    )
