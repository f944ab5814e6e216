"""What a TrainJob of a Hugging Face causal language model adds to a run: its data and model (with
LoRA adapters when the spec asks), the two figures of its metrics, its card's adapter section and
its artifact. Imported only by such a job (build.prepare, finish): transformers and peft take
seconds to import, which a network's job does not pay.

The figures: the held-out perplexity of the unigram model of the training tokens, which a language
model must beat to have learnt more than token frequencies, and a sample, the greedy continuation
of the start of the held-out text (of a conversation: its tokens up to the assistant's first reply),
which the artifact reproduces wherever it is loaded.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import peft
import tokenizers
import torch
import transformers

from lmaas_api.card import Adapter, ModelCard
from lmaas_api.spec import TrainJobSpec

from ..artifacts import adapter, huggingface
from ..data import IGNORE_INDEX, DataBundle
from ..data.cache import TokenCache
from ..data.language import language_data
from ..data.sources import read_split
from ..data.text import unigram_perplexity
from ..data.tokenizer import load_tokenizer, train_tokenizer
from ..models import BuiltModel
from ..models.causal_lm import build_causal_lm, greedy_continuation
from ..models.lora import add_lora
from .config import TrainConfig

if TYPE_CHECKING:
    from .build import Job

SAMPLE_PROMPT_TOKENS = 16
SAMPLE_TOKENS = 24


def build_language_model(config: TrainConfig, local_rank: int) -> tuple[DataBundle, BuiltModel]:
    """A Hugging Face model, its tokenizer, and its data tokenized into blocks."""
    spec = config.spec
    split = read_split(spec.dataset, config.dataset_path)
    if spec.tokenizer is not None:
        tokenizer, tokenizer_field = (
            train_tokenizer(split.training_text(), spec.tokenizer.train.vocab_size),
            "spec.tokenizer",
        )
    else:
        tokenizer, tokenizer_field = load_tokenizer(config.model_dir, "spec.model.hf.uri"), "spec.model.hf.uri"
    data = language_data(
        split, tokenizer, spec.dataset.sequence_length, TokenCache(config.data_cache_dir), local_rank, tokenizer_field
    )
    torch.manual_seed(spec.hyperparameters.seed)  # every rank builds the same initial weights
    built = build_causal_lm(spec.model.hf, tokenizer, config.model_dir, spec.dataset.sequence_length)
    if spec.peft is not None:
        built = add_lora(built, spec.peft.lora)
    return data, built


def adapter_card(job: Job) -> Adapter:
    """The model card's account of the LoRA adapters: what was trained, and where the base is."""
    spec = job.config.spec
    lora, hf, lm = spec.peft.lora, spec.model.hf, job.built.module.lm
    return Adapter(
        method="lora",
        r=lora.r,
        alpha=lora.alpha,
        dropout=lora.dropout,
        target_modules=sorted(lm.peft_config[lm.active_adapter].target_modules),
        trainable_parameters=sum(p.numel() for p in job.built.module.parameters() if p.requires_grad),
        base_uri=hf.uri,
        base_path=adapter.BASE_FOLDER if hf.uri is None else None,
        merged_path=adapter.MERGED_FOLDER if spec.peft.merge_adapter else None,
    )


def figures(job: Job) -> dict[str, Any]:
    """The unigram baseline and the greedy sample. Every rank calls it: a sharded model computes the
    sample together."""
    tokenizer = job.data.tokenizer
    inputs, targets = (t[0] for t in job.data.val.tensors)
    learnt = (targets != IGNORE_INDEX).nonzero()
    # a target at position i is the token after input i: a conversation's prompt ends at the first learnt one
    end = SAMPLE_PROMPT_TOKENS if int(learnt[0]) == 0 else int(learnt[0]) + 1
    prompt = tokenizer.decode(inputs[:end].tolist())
    continuation = greedy_continuation(
        job.model, tokenizer(prompt, add_special_tokens=False)["input_ids"], SAMPLE_TOKENS, tokenizer.eos_token_id
    )
    return {
        "unigramPerplexity": unigram_perplexity(job.data.train, job.data.val, len(tokenizer)),
        "sample": {"prompt": prompt, "greedy": tokenizer.decode(continuation)},
    }


def libraries(spec: TrainJobSpec) -> list[ModuleType]:
    """The libraries besides torch that made the model and can load it (their versions go on the card)."""
    return [transformers, tokenizers, *([peft] if spec.peft is not None else [])]


def save_adapter(
    job: Job, state: dict[str, torch.Tensor], card: ModelCard, metrics: dict[str, Any], history: dict[str, Any]
) -> int:
    """Write the adapter folder peft writes from the full state on rank 0; the weights' bytes."""
    return adapter.save(
        job.config.artifact_dir, state, job.built.module.lm.config, job.data.tokenizer, card, metrics, history
    )


def save_model(
    job: Job, card: ModelCard | None, metrics: dict[str, Any], history: dict[str, Any], world_size: int, is_main: bool
) -> int | None:
    """Write the Hugging Face folder, every rank its part of the weights; the weights' bytes on rank 0."""
    return huggingface.save(
        job.config.artifact_dir,
        job.model,
        job.built.module.lm,
        job.data.tokenizer,
        card,
        metrics,
        history,
        world_size,
        is_main,
    )
