"""Speech-emotion CNNs on log-mel windows (N x 1 x 64 mels x frames, natural-log power).

Gain normalisation is inside the graph, so a quiet and a loud recording of the same voice look the
same to the network, and the ONNX file takes the raw `features.log_mel` output.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from emodetect.layers import ConvBNAct
from emodetect.registry import register_model

# 80 dB of dynamic range below the window's loudest bin; quieter bins (room noise, the zero
# padding of short clips) all read the same.
_RANGE = 80.0 * math.log(10) / 10


class LogMelNormalize(nn.Module):
    """Peak-relative log-mel, floored at -80 dB, scaled to about unit range."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        peak = x.amax(dim=(2, 3), keepdim=True)
        return (torch.clamp(x - peak, min=-_RANGE) + _RANGE / 2) / (_RANGE / 4)


class MelCNN(nn.Module):
    """A stride-2 stem (CPU budget: it quarters every later layer's cost), VGG-like stages over
    (mel, time), then mean+max pooling over time of the frequency mean."""

    def __init__(self, widths: tuple[int, ...], num_classes: int, dropout: float, convs_per_stage: int = 1,
                 n_mels: int = 64, flatten_freq: bool = True, stats: bool = False):
        super().__init__()
        self.normalize = LogMelNormalize()
        layers: list[nn.Module] = [ConvBNAct(1, widths[0], stride=2)]
        in_ch = widths[0]
        for width in widths[1:]:
            for _ in range(convs_per_stage):
                layers.append(ConvBNAct(in_ch, width))
                in_ch = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        # Convolutions are blind to where in frequency a pattern sits; pitch and formant height
        # carry emotion, so the head sees each frequency row separately (C x F' features).
        self.flatten_freq = flatten_freq
        rows = n_mels // 2 ** len(widths) if flatten_freq else 1
        # Optional utterance statistics of the input itself (per band: mean, spread, mean change
        # per frame), the classic speech-emotion descriptors, given to the head beside the CNN's.
        self.stats = nn.BatchNorm1d(3 * n_mels) if stats else None
        width = 2 * in_ch * rows + (3 * n_mels if stats else 0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns logits."""
        x = self.normalize(x)
        h = self.features(x)  # N x C x F' x T
        h = h.flatten(1, 2) if self.flatten_freq else h.mean(dim=2)
        pooled = [h.mean(dim=2), h.amax(dim=2)]
        if self.stats is not None:
            bands = x[:, 0]  # N x mels x T
            mean = bands.mean(dim=2)
            spread = torch.sqrt(((bands - mean.unsqueeze(2)) ** 2).mean(dim=2) + 1e-6)
            change = (bands[:, :, 1:] - bands[:, :, :-1]).abs().mean(dim=2)
            pooled.append(self.stats(torch.cat([mean, spread, change], dim=1)))
        return self.head(torch.cat(pooled, dim=1))


@register_model
def mel_cnn(num_classes: int = 8, dropout: float = 0.3, width: int = 16) -> nn.Module:
    """Stem plus three one-conv stages (16-32-64-128 channels), ~0.1 M conv parameters, ~70 MMAC
    per 3 s window: the bundled voice model."""
    return MelCNN((width, width * 2, width * 4, width * 8), num_classes, dropout)


@register_model
def mel_cnn_stats(num_classes: int = 8, dropout: float = 0.3, width: int = 16) -> nn.Module:
    """mel_cnn whose head also sees per-band utterance statistics of the log-mel (mean, spread,
    mean frame-to-frame change): the CNN learns what the statistics miss."""
    return MelCNN((width, width * 2, width * 4, width * 8), num_classes, dropout, stats=True)


@register_model
def mel_cnn_stats_wide(num_classes: int = 8, dropout: float = 0.3) -> nn.Module:
    """mel_cnn_stats at 1.5x the widths (24-48-96-192): about 2.2x the arithmetic."""
    return mel_cnn_stats(num_classes, dropout, width=24)


@register_model
def mel_cnn_fmean(num_classes: int = 8, dropout: float = 0.3, width: int = 16) -> nn.Module:
    """mel_cnn averaging over frequency before the head (the first design; kept for comparison)."""
    return MelCNN((width, width * 2, width * 4, width * 8), num_classes, dropout, flatten_freq=False)


@register_model
def mel_cnn_deep(num_classes: int = 8, dropout: float = 0.3, width: int = 16) -> nn.Module:
    """Two convs per stage after the stem (16-32-64-128): more depth for the same widths."""
    return MelCNN((width, width * 2, width * 4, width * 8), num_classes, dropout, convs_per_stage=2)


@register_model
def mel_cnn_tiny(num_classes: int = 8, dropout: float = 0.0) -> nn.Module:
    """A very small net for tests and smoke runs."""
    return MelCNN((8, 16), num_classes, dropout)
