"""Public-domain Shakespeare (sonnets and speeches) shipped as `shakespeare.txt`, for char-gpt.

The vocabulary is every character of the text, sorted. The first (1 - validation_fraction) of the
text trains, the rest validates. Training samples are windows of `context` characters starting
every `stride` characters; validation windows do not overlap. Targets are the inputs shifted by one.
"""

from __future__ import annotations

from importlib.resources import files

import torch
from torch.utils.data import Dataset

DEFAULT_CONTEXT = 64


def text() -> str:
    return files(__package__).joinpath("shakespeare.txt").read_text(encoding="utf-8")


class CharWindows(Dataset):
    """(input, target) windows over a sequence of token ids."""

    task = "language-modeling"

    def __init__(self, ids: torch.Tensor, context: int, stride: int):
        self.ids = ids
        self.context = context
        self.starts = range(0, len(ids) - context, stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.starts[index]
        chunk = self.ids[start : start + self.context + 1]
        return chunk[:-1], chunk[1:]


def load(validation_fraction: float = 0.2, context: int | None = None, stride: int = 1):
    from . import DataBundle

    context = DEFAULT_CONTEXT if context is None else context
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if context < 1 or stride < 1:
        raise ValueError(f"context and stride must be positive, got context={context}, stride={stride}")
    corpus = text()
    vocab = sorted(set(corpus))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = torch.tensor([index[ch] for ch in corpus], dtype=torch.int64)
    cut = int(len(ids) * (1 - validation_fraction))
    if min(cut, len(ids) - cut) <= context:
        raise ValueError(
            f"context {context} is too long for a {len(ids)}-character text split "
            f"{1 - validation_fraction:.2f}/{validation_fraction:.2f}"
        )
    return DataBundle(
        train=CharWindows(ids[:cut], context, stride),
        val=CharWindows(ids[cut:], context, context),
        task="language-modeling",
        vocab=vocab,
        input_spec={"shape": [context], "dtype": "int64", "encoding": "character indices into vocab"},
    )
