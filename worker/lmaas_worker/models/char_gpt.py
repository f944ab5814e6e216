"""A small GPT-style character language model.

Token and position embeddings, `layers` pre-norm transformer blocks (causal multi-head
self-attention and a 4x MLP), a final layer norm and a linear head to the vocabulary. The
output is logits of shape (batch, time, vocab). Untied embedding and head weights, so that each
block and the embeddings shard independently under FSDP.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..data.shakespeare import DEFAULT_CONTEXT


class CausalSelfAttention(nn.Module):
    def __init__(self, embedding: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(embedding, 3 * embedding)
        self.proj = nn.Linear(embedding, embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, embedding: int, heads: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(embedding)
        self.attention = CausalSelfAttention(embedding, heads, dropout)
        self.norm2 = nn.LayerNorm(embedding)
        self.mlp = nn.Sequential(
            nn.Linear(embedding, 4 * embedding), nn.GELU(), nn.Linear(4 * embedding, embedding), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CharGPT(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        context: int = DEFAULT_CONTEXT,
        layers: int = 4,
        heads: int = 4,
        embedding: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        if min(vocab_size, context, layers, heads, embedding) < 1:
            raise ValueError("vocab_size, context, layers, heads and embedding must be positive")
        if embedding % heads:
            raise ValueError(f"embedding ({embedding}) must be a multiple of heads ({heads})")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.context = context
        self.token = nn.Embedding(vocab_size, embedding)
        self.position = nn.Embedding(context, embedding)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(embedding, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(embedding)
        self.head = nn.Linear(embedding, vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"a sequence of {t} tokens is longer than the model's context of {self.context}")
        positions = torch.arange(t, device=idx.device)
        x = self.drop(self.token(idx) + self.position(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def fsdp_units(self) -> list[nn.Module]:
        return list(self.blocks)


def build(
    vocab_size: int,
    context: int = DEFAULT_CONTEXT,
    layers: int = 4,
    heads: int = 4,
    embedding: int = 128,
    dropout: float = 0.0,
) -> CharGPT:
    return CharGPT(vocab_size, context, layers, heads, embedding, dropout)
