"""The tokenizer of a Hugging Face language model: trained on the training text, or a model folder's.

Either way it is a transformers fast tokenizer, which the artifact saves with `save_pretrained`
and `AutoTokenizer.from_pretrained` loads back.

`train_tokenizer` trains a byte-level BPE (GPT-2's scheme: every byte is a token, so any text
encodes) with the `tokenizers` library. It has two special tokens: END_OF_TEXT, which ends each
text and is the model's beginning- and end-of-sequence token, and PADDING. Training is
deterministic (merges are ranked by count, ties by the pair itself), so every rank, each training
its own from the same text, holds the same tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from lmaas_api.errors import ConfigError

END_OF_TEXT = "<|endoftext|>"
PADDING = "<|pad|>"


def train_tokenizer(text: str, vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE of at most `vocab_size` tokens (fewer when the text has fewer pairs to merge)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT, PADDING],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([text], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, pad_token=PADDING
    )


def load_tokenizer(folder: Path, field: str) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a model folder; no code from the folder runs. Problems name `field`."""
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ConfigError(
            field, f"no tokenizer could be loaded from {folder}: {type(error).__name__}: {error}"
        ) from error
