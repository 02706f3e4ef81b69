"""MPNet (all-mpnet-base-v2 and kin) in plain torch, beside the BERT encoder of emodetect.text.encoder.

Why a sibling rather than a flag inside TextEncoder: MPNet keeps BERT's post-norm layer (the same
EncoderLayer here) but differs where BERT is simplest, and a flag at each place would hide both:
- no segment embedding;
- absolute positions count from padding_idx + 1 (= 2) for the first token, padding sits at 1;
- one learned relative-position bias (32 buckets x heads, T5's log buckets up to distance 128),
  computed once and added to every layer's attention scores;
- LayerNorm eps 1e-5, and a vocabulary with <s> </s> <pad> (emodetect.text.wordpiece.MPNetVocabulary,
  which trades <s> and <pad> so that padding is id 0 as in every text model here; `load_pretrained`
  trades the two embedding rows to match).
Weights: model.safetensors in Hugging Face's MPNetModel names (the all-mpnet-base-v2 folder; see
docs/training/mpnet/README.md for where it comes from). Output: logits of a linear head over the
mean of the last layer's real tokens, or that mean L2-normalised (`sentence_embedding`, what
sentence-transformers gives for all-mpnet-base-v2).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emodetect.text.encoder import EMBEDDING_NAMES, EncoderLayer, checkpoint_names, config_sizes, copy_checkpoint

NUM_BUCKETS, MAX_DISTANCE = 32, 128  # MPNetEncoder's relative_position_bucket defaults
PAD_POSITION = 1  # Hugging Face's padding_idx for MPNet positions: real tokens start at 2


def row_tokens(max_positions: int) -> int:
    """Tokens one row may hold with a position table of `max_positions` rows (config.json's
    max_position_embeddings): 512 for 514, as positions start past padding_idx."""
    return max_positions - PAD_POSITION - 1


def relative_buckets(length: int, num_buckets: int = NUM_BUCKETS, max_distance: int = MAX_DISTANCE,
                     device: torch.device | None = None) -> torch.Tensor:
    """L x L bucket of each (query, key) pair, as MPNet's (and T5's bidirectional) bucketing: half
    the buckets for keys before the query, half after; inside each half, distances under a quarter
    of the buckets get one bucket each, longer ones share log-spaced buckets up to `max_distance`."""
    positions = torch.arange(length, device=device)
    n = positions[:, None] - positions[None, :]  # query - key: MPNet's -(memory - context)
    half = num_buckets // 2
    out = (n < 0).long() * half
    n = n.abs()
    exact = half // 2
    large = exact + (torch.log(n.float().clamp(min=1) / exact) / math.log(max_distance / exact)
                     * (half - exact)).long()
    large = large.clamp(max=half - 1)
    return out + torch.where(n < exact, n, large)


class MPNetEncoder(nn.Module):
    """Embeddings (word + position, LayerNorm), post-norm layers sharing one relative-position
    bias, masked mean, linear head. Ids: MPNetVocabulary's, 0 = padding."""

    def __init__(self, vocab_size: int, num_classes: int, hidden: int = 768, layers: int = 12, heads: int = 12,
                 intermediate: int = 3072, max_positions: int = 514, dropout: float = 0.1, eps: float = 1e-5,
                 head_dropout: float = 0.1, buckets: int = NUM_BUCKETS):
        super().__init__()
        self.words = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.positions = nn.Embedding(max_positions, hidden)
        self.embed_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.relative_bias = nn.Embedding(buckets, heads)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, intermediate, dropout, eps) for _ in range(layers))
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(hidden, num_classes))
        self.buckets = buckets
        self.max_positions = row_tokens(max_positions)
        self.dynamic_input_axes = (1,)  # as TextEncoder: padding is masked, the token axis stays free
        self.int8_dynamic = True

    def pooled(self, ids: torch.Tensor) -> torch.Tensor:
        """N x hidden: the mean of the last layer over each row's real tokens."""
        if self.training:  # trailing all-padding columns cost compute and change nothing
            ids = ids[:, :max(1, int((ids > 0).sum(1).max()))]
        real = ids > 0
        positions = real.long().cumsum(1) * real + PAD_POSITION  # Hugging Face's create_position_ids_from_input_ids
        x = self.dropout(self.embed_norm(self.words(ids) + self.positions(positions)))
        buckets = relative_buckets(ids.shape[1], self.buckets, device=ids.device)
        position_bias = self.relative_bias(buckets).permute(2, 0, 1).unsqueeze(0)  # 1 x H x L x L
        bias = position_bias.to(x.dtype) + (~real)[:, None, None, :].to(x.dtype) * -1e4
        for layer in self.layers:
            x = layer(x, bias)
        real = real | ~real.any(1, keepdim=True)  # an empty row pools over its padding
        weights = real.unsqueeze(2).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1)

    def sentence_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        """N x hidden, unit length: sentence-transformers' all-mpnet-base-v2 output (mean, normalise)."""
        return F.normalize(self.pooled(ids), dim=-1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Returns logits."""
        return self.head(self.pooled(ids))

    @torch.no_grad()
    def load_pretrained(self, folder: str | Path) -> None:
        """Copy an MPNet checkpoint's encoder weights in; the head stays freshly initialised."""
        weights = copy_checkpoint(self, folder, "mpnet.", hf_names(len(self.layers)), "an MPNet model")
        self.words.weight[[0, 1]] = weights["embeddings.word_embeddings.weight"][[1, 0]]  # MPNetVocabulary's ids


MPNET_LAYER_PARTS = {"attention.query": "attention.attn.q", "attention.key": "attention.attn.k",
                     "attention.value": "attention.attn.v", "attention.out": "attention.attn.o",
                     "norm1": "attention.LayerNorm", "feed_forward.0": "intermediate.dense",
                     "feed_forward.2": "output.dense", "norm2": "output.LayerNorm"}


def hf_names(layers: int) -> dict[str, str]:
    """Each MPNetEncoder weight's name in a Hugging Face MPNetModel checkpoint."""
    return checkpoint_names(layers, MPNET_LAYER_PARTS, {
        **EMBEDDING_NAMES, "relative_bias.weight": "encoder.relative_attention_bias.weight"})


def mpnet_sizes(folder: str | Path) -> dict[str, Any]:
    """The MPNetEncoder sizes a pretrained folder's config.json gives (Hugging Face's MPNet keys)."""
    return config_sizes(folder, "MPNet", eps=1e-5, buckets=("relative_attention_num_buckets", NUM_BUCKETS))


def load_mpnet(folder: str | Path, num_classes: int = 1):
    """(MPNetEncoder with the folder's weights, in eval mode; its MPNetVocabulary): what a teacher
    pass needs. The head is untrained."""
    from emodetect.text.wordpiece import MPNetVocabulary

    vocab = MPNetVocabulary.from_file(Path(folder) / "vocab.txt")
    model = MPNetEncoder(len(vocab), num_classes, **mpnet_sizes(folder))
    model.load_pretrained(folder)
    return model.eval(), vocab
