"""A Hugging Face language model's data: its split source tokenized once per node, as blocks.

Text (plain, jsonl, parquet) is packed into consecutive blocks (`text`); each conversation of a
chat data set is one padded block whose loss is on the assistant's tokens (`chat`). The tokens
are cached on the node (`cache`), keyed by the source bytes' hash, the tokenizer's hash, the block
length and the format's options, so a restart, or another rank of the node, maps the same arrays.
Every rank then trains on its own share of the blocks, which the training plan draws from the seed.
"""

from __future__ import annotations

import hashlib

import torch
from torch.utils.data import TensorDataset
from transformers import PreTrainedTokenizerBase

from . import DataBundle, chat, text
from .cache import TokenCache, once_per_node
from .sources import Split

PARTS = ("train", "held-out")
ENCODINGS = {
    "text": "token ids of the artifact's tokenizer",
    "chat": "token ids of a conversation rendered with the artifact's tokenizer's chat template",
}


def tokenizer_hash(tokenizer: PreTrainedTokenizerBase) -> str:
    """What decides how the tokenizer encodes: its vocabulary, merges, special tokens and chat template."""
    described = "\0".join(
        [
            tokenizer.backend_tokenizer.to_str(),
            str(tokenizer.chat_template),
            str(tokenizer.eos_token_id),
            str(tokenizer.pad_token_id),
        ]
    )
    return hashlib.sha256(described.encode()).hexdigest()


def language_data(
    split: Split,
    tokenizer: PreTrainedTokenizerBase,
    sequence_length: int,
    cache: TokenCache,
    local_rank: int,
    tokenizer_field: str,
) -> DataBundle:
    """The training and held-out blocks of `split`, tokenized by local rank 0 and mapped by every rank.
    `tokenizer_field` names where the tokenizer comes from, for a chat template that cannot work."""
    parts = {
        **split.options,
        "data": split.digest,
        "tokenizer": tokenizer_hash(tokenizer),
        "sequenceLength": sequence_length,
    }
    build = _chat_arrays if split.is_chat else _text_arrays
    arrays = once_per_node(cache, parts, lambda: build(split, tokenizer, sequence_length, tokenizer_field), local_rank)
    if split.is_chat:
        blocks = [TensorDataset(arrays[f"{part}-inputs"], arrays[f"{part}-targets"]) for part in PARTS]
    else:
        blocks = [text.packed(arrays[part], sequence_length) for part in PARTS]
    return DataBundle(
        train=blocks[0],
        val=blocks[1],
        task="language-modeling",
        tokenizer=tokenizer,
        input_spec={
            "shape": [sequence_length],
            "dtype": "int64",
            "encoding": ENCODINGS["chat" if split.is_chat else "text"],
        },
    )


def _text_arrays(
    split: Split, tokenizer: PreTrainedTokenizerBase, sequence_length: int, tokenizer_field: str
) -> dict[str, torch.Tensor]:
    return {
        part: text.checked_length(text.token_ids(documents, tokenizer), sequence_length, name)
        for part, documents, name in zip(PARTS, (split.train, split.held_out), ("training", "held-out"))
    }


def _chat_arrays(
    split: Split, tokenizer: PreTrainedTokenizerBase, sequence_length: int, tokenizer_field: str
) -> dict[str, torch.Tensor]:
    arrays = {}
    for part, conversations in zip(PARTS, (split.train, split.held_out)):
        inputs, targets = chat.chat_blocks(conversations, tokenizer, sequence_length, part, tokenizer_field)
        arrays[f"{part}-inputs"], arrays[f"{part}-targets"] = inputs, targets
    return arrays
