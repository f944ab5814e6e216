"""Text for a Hugging Face causal language model: documents tokenized and packed into fixed blocks.

Each document of a split is encoded, followed by the tokenizer's end-of-text token, the documents
one after another, and the whole cut into consecutive blocks of `sequence_length` tokens; a block's
targets are the same tokens shifted by one (the last target is the first token of the next block).
A split's tail shorter than a block is dropped.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset
from transformers import PreTrainedTokenizerBase

from lmaas_api.errors import ConfigError

from . import IGNORE_INDEX


def token_ids(documents: list[str], tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """The documents' token ids, each ended by the end-of-text token when the tokenizer has one."""
    end = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    encoded = tokenizer(documents, add_special_tokens=False)["input_ids"]
    return torch.tensor([token for ids in encoded for token in ids + end], dtype=torch.int64)


def packed(ids: torch.Tensor, sequence_length: int) -> TensorDataset:
    """Consecutive blocks of `sequence_length` ids and their next tokens."""
    blocks = (len(ids) - 1) // sequence_length
    end = blocks * sequence_length
    return TensorDataset(ids[:end].view(blocks, sequence_length), ids[1 : end + 1].view(blocks, sequence_length))


def checked_length(ids: torch.Tensor, sequence_length: int, part: str) -> torch.Tensor:
    """`ids`, once they make one block at least; else a ConfigError naming sequenceLength."""
    if len(ids) <= sequence_length:
        raise ConfigError(
            "spec.dataset.sequenceLength",
            f"the {part} text is {len(ids)} tokens long, too short for "
            f"one block of {sequence_length} tokens and its targets; "
            "shorten sequenceLength or change validationFraction",
        )
    return ids


def unigram_perplexity(train: TensorDataset, held_out: TensorDataset, vocab_size: int) -> float:
    """The held-out perplexity of the unigram model of the training targets (add-one smoothed): what a
    language model must beat to have learnt anything beyond token frequencies. Targets that carry no
    loss (a conversation's prompt and padding) count on neither side."""
    train_targets, held_out_targets = (part.tensors[1].flatten() for part in (train, held_out))
    counts = torch.bincount(train_targets[train_targets != IGNORE_INDEX], minlength=vocab_size).double() + 1
    log_probabilities = counts.log() - math.log(float(counts.sum()))
    return math.exp(-float(log_probabilities[held_out_targets[held_out_targets != IGNORE_INDEX]].mean()))
