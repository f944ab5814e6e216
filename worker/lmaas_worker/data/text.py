"""Text for a Hugging Face causal language model: split, tokenized once, packed into fixed blocks.

The first (1 - validation_fraction) of the text, cut at a line end, trains (its tokenizer is trained
on it alone); the rest is held out, so no held-out text was seen by the model or the tokenizer.
Each part is encoded once, followed by the tokenizer's end-of-text token, and cut into consecutive
blocks of `sequence_length` tokens; a block's targets are the same tokens shifted by one (the last
target is the first token of the next block). A part's tail shorter than a block is dropped.

Blocks are `TensorDataset`s of (input ids, target ids), int64, which `data.batches` gathers
without a Python call per sample.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset
from transformers import PreTrainedTokenizerBase

from lmaas_api.errors import ConfigError
from lmaas_api.spec import DatasetDefinition

from . import DataBundle, shakespeare

BUILTIN_TEXTS = {"shakespeare": shakespeare.text}


def source_text(definition: DatasetDefinition) -> str:
    return BUILTIN_TEXTS[definition.builtin]()


def split_text(text: str, validation_fraction: float) -> tuple[str, str]:
    """(training text, held-out text): the held-out part is the last `validation_fraction`, from a line start."""
    cut = text.rfind("\n", 0, int(len(text) * (1 - validation_fraction))) + 1
    return text[:cut], text[cut:]


def token_ids(text: str, tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """The text's token ids, ended by the end-of-text token when the tokenizer has one."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.int64)


def packed(ids: torch.Tensor, sequence_length: int) -> TensorDataset:
    """Consecutive blocks of `sequence_length` ids and their next tokens."""
    blocks = (len(ids) - 1) // sequence_length
    end = blocks * sequence_length
    return TensorDataset(ids[:end].view(blocks, sequence_length), ids[1 : end + 1].view(blocks, sequence_length))


def text_datasets(
    train_text: str, held_out_text: str, tokenizer: PreTrainedTokenizerBase, sequence_length: int
) -> DataBundle:
    """The packed training and held-out blocks; a part too short for one block is a ConfigError."""
    parts = {}
    for name, text in (("training", train_text), ("held-out", held_out_text)):
        ids = token_ids(text, tokenizer)
        if len(ids) <= sequence_length:
            raise ConfigError(
                "spec.dataset.sequenceLength",
                f"the {name} text is {len(ids)} tokens long, too short for "
                f"one block of {sequence_length} tokens and its targets; "
                "shorten sequenceLength or change validationFraction",
            )
        parts[name] = packed(ids, sequence_length)
    return DataBundle(
        train=parts["training"],
        val=parts["held-out"],
        task="language-modeling",
        tokenizer=tokenizer,
        input_spec={"shape": [sequence_length], "dtype": "int64", "encoding": "token ids of the artifact's tokenizer"},
    )


def unigram_perplexity(train: TensorDataset, held_out: TensorDataset, vocab_size: int) -> float:
    """The held-out perplexity of the unigram model of the training targets (add-one smoothed): what a
    language model must beat to have learnt anything beyond token frequencies."""
    counts = torch.bincount(train.tensors[1].flatten(), minlength=vocab_size).double() + 1
    log_probabilities = counts.log() - math.log(float(counts.sum()))
    return math.exp(-float(log_probabilities[held_out.tensors[1].flatten()].mean()))
