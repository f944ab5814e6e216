"""The tokenizer of a Hugging Face language model: trained on the training text, or a model folder's.

Either way it is a transformers fast tokenizer, which the artifact saves with `save_pretrained`
and `AutoTokenizer.from_pretrained` loads back.

`train_tokenizer` trains a byte-level BPE (GPT-2's scheme: every byte is a token, so any text
encodes) with the `tokenizers` library. It has four special tokens: END_OF_TEXT, which ends each
text and is the model's beginning- and end-of-sequence token, PADDING, and TURN_START and TURN_END,
which frame each message of a conversation in its chat template (ChatML's layout). The template
marks the assistant's replies, their TURN_END included, as `{% generation %}`, so that
`apply_chat_template(..., return_assistant_tokens_mask=True)` tells which tokens a model should
learn to say. Training is deterministic (merges are ranked by count, ties by the pair itself), so
every rank, each training its own from the same text, holds the same tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from lmaas_api.errors import ConfigError

END_OF_TEXT = "<|endoftext|>"
PADDING = "<|pad|>"
TURN_START = "<|im_start|>"
TURN_END = "<|im_end|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '" + TURN_START + "' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '" + TURN_END + "' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '" + TURN_END + "' }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '" + TURN_START + "assistant\\n' }}{% endif %}"
)


def train_tokenizer(text: str, vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE of at most `vocab_size` tokens (fewer when the text has fewer pairs to merge)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT, PADDING, TURN_START, TURN_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([text], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        pad_token=PADDING,
        chat_template=CHAT_TEMPLATE,
    )


def load_tokenizer(folder: Path, field: str) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a model folder; no code from the folder runs. Problems name `field`."""
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ConfigError(
            field, f"no tokenizer could be loaded from {folder}: {type(error).__name__}: {error}"
        ) from error
