"""Convolutional text classifiers. Each takes token ids (N x L int64, 0 = padding), returns logits."""

from __future__ import annotations

import torch
from torch import nn

from emodetect.layers import ConvBNAct
from emodetect.registry import register_model


class KimCNN(nn.Module):
    """Kim (2014): embeddings, parallel 1-D convolutions of several widths, max over time, linear.

    Widths are odd so every branch keeps the sequence length and one padding mask serves all
    branches: positions that are padding never win the max.
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128,
                 widths: tuple[int, ...] = (1, 3, 5), filters: int = 128, dropout: float = 0.5,
                 embed_dropout: float = 0.1, depth: int = 1):
        super().__init__()
        if any(w % 2 == 0 for w in widths):
            raise ValueError(f"widths must be odd (same-length convolutions), got {widths}")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.embed_dropout = nn.Dropout1d(embed_dropout)  # drops whole embedding channels
        self.branches = nn.ModuleList(
            nn.Sequential(ConvBNAct(embed_dim, filters, w, dims=1),
                          *[ConvBNAct(filters, filters, w, dims=1) for _ in range(depth - 1)])
            for w in widths)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(filters * len(widths), num_classes))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Returns logits."""
        real = (ids > 0).unsqueeze(1)  # N x 1 x L
        real = real | ~real.any(2, keepdim=True)  # an empty text pools over its padding
        x = self.embed_dropout(self.embed(ids).transpose(1, 2))  # N x E x L
        pooled = [branch(x).masked_fill(~real, -1e4).amax(2) for branch in self.branches]
        return self.head(torch.cat(pooled, 1))


@register_model
def kim_cnn(num_classes: int = 28, vocab_size: int = 30_000, embed_dim: int = 128,
            filters: int = 128, dropout: float = 0.5) -> nn.Module:
    """The default text model: widths 1, 3, 5 with 128 filters each over 128-d embeddings."""
    return KimCNN(vocab_size, num_classes, embed_dim, (1, 3, 5), filters, dropout)


@register_model
def kim_cnn_wide(num_classes: int = 28, vocab_size: int = 30_000, dropout: float = 0.5) -> nn.Module:
    """Four widths (1, 3, 5, 7), 256 filters each over 200-d embeddings."""
    return KimCNN(vocab_size, num_classes, 200, (1, 3, 5, 7), 256, dropout)


@register_model
def kim_cnn_deep(num_classes: int = 28, vocab_size: int = 30_000, dropout: float = 0.5) -> nn.Module:
    """Two stacked convolutions per branch: each branch sees twice the context."""
    return KimCNN(vocab_size, num_classes, 128, (3, 5), 128, dropout, depth=2)


@register_model
def kim_cnn_tiny(num_classes: int = 2, vocab_size: int = 1000, dropout: float = 0.0) -> nn.Module:
    """A very small net for tests and smoke runs."""
    return KimCNN(vocab_size, num_classes, 16, (1, 3), 16, dropout, embed_dropout=0.0)
