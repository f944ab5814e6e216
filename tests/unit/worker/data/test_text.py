"""lmaas_worker.data.text: text split where no held-out token was trained on, packed into blocks
whose targets are the next tokens, and the unigram baseline a language model must beat."""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from lmaas_api.errors import ConfigError
from lmaas_api.spec import TrainJobDataset
from lmaas_worker.data import shakespeare, text
from lmaas_worker.data.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(shakespeare.text(), 600)


def test_the_held_out_text_is_the_last_fraction_from_a_line_start():
    corpus = shakespeare.text()
    train, held_out = text.split_text(corpus, 0.1)
    assert train + held_out == corpus
    assert train.endswith("\n") and 0.09 < len(held_out) / len(corpus) < 0.11
    assert text.split_text(corpus, 0.1) == (train, held_out)
    assert text.source_text(TrainJobDataset(builtin="shakespeare", sequence_length=8)) == corpus


def test_blocks_are_consecutive_and_each_target_is_the_next_token():
    ids = torch.arange(23)
    blocks = text.packed(ids, 5)
    inputs, targets = blocks.tensors
    assert inputs.tolist() == [list(range(s, s + 5)) for s in (0, 5, 10, 15)]  # 20, 21 and 22 left over
    assert torch.equal(targets, inputs + 1)  # across block ends too: block 0's last target is block 1's first input


def test_the_text_becomes_blocks_of_token_ids_ended_by_end_of_text(tokenizer):
    corpus = shakespeare.text()
    data = text.text_datasets(*text.split_text(corpus, 0.2), tokenizer, 32)
    assert isinstance(data.train, TensorDataset) and data.task == "language-modeling"
    assert data.tokenizer is tokenizer and data.input_spec["shape"] == [32]
    assert data.train.tensors[0].dtype == torch.int64 and data.train.tensors[0].shape[1] == 32
    held_out_ids = text.token_ids(text.split_text(corpus, 0.2)[1], tokenizer)
    assert held_out_ids[-1] == tokenizer.eos_token_id
    assert len(data.val) == (len(held_out_ids) - 1) // 32
    assert tokenizer.decode(data.train.tensors[0][0]) == tokenizer.decode(text.token_ids(corpus, tokenizer)[:32])


def test_a_text_too_short_for_one_block_names_sequence_length(tokenizer):
    with pytest.raises(ConfigError) as error:
        text.text_datasets(
            "Music to hear, why hear'st thou music sadly?\n", "Sweets with sweets war not.\n", tokenizer, 64
        )
    assert error.value.field == "spec.dataset.sequenceLength" and "training text" in str(error.value)


def test_the_unigram_baseline_is_the_held_out_perplexity_of_smoothed_training_counts():
    train = TensorDataset(torch.zeros(2, 3, dtype=torch.int64), torch.tensor([[0, 0, 1], [0, 0, 2]]))
    held_out = TensorDataset(torch.zeros(1, 2, dtype=torch.int64), torch.tensor([[0, 3]]))
    # counts + 1 over a vocabulary of 4: token 0 has 5 of 10, token 3 has 1 of 10
    assert text.unigram_perplexity(train, held_out, 4) == pytest.approx(math.exp(-(math.log(0.5) + math.log(0.1)) / 2))
    uniform = TensorDataset(torch.zeros(1, 4, dtype=torch.int64), torch.tensor([[0, 1, 2, 3]]))
    assert text.unigram_perplexity(uniform, uniform, 4) == pytest.approx(4)
