"""Face-expression CNNs for 48x48 grey input. Each takes raw pixels 0..255 (N x 1 x 48 x 48)."""

from __future__ import annotations

import torch
from torch import nn

from emodetect.layers import ConvBNAct, PixelNormalize, ResidualBlock
from emodetect.registry import register_model


class _Classifier(nn.Module):
    def __init__(self, features: nn.Module, width: int, num_classes: int, dropout: float):
        super().__init__()
        self.normalize = PixelNormalize()
        self.features = features
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns logits."""
        return self.head(self.features(self.normalize(x)))


def _vgg_stages(widths: tuple[int, ...], convs_per_stage: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 1
    for i, width in enumerate(widths):
        for _ in range(convs_per_stage):
            layers.append(ConvBNAct(in_ch, width))
            in_ch = width
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


@register_model
def vgg_fer(num_classes: int = 7, dropout: float = 0.3, width: int = 64) -> nn.Module:
    """VGG-style net (4 stages of 2 convs, 48->6 px): the default model, ~0.9 GFLOP per face."""
    widths = (width, width * 2, width * 4, width * 8)
    return _Classifier(_vgg_stages(widths, 2), widths[-1], num_classes, dropout)


@register_model
def vgg_fer_small(num_classes: int = 7, dropout: float = 0.2) -> nn.Module:
    """Half-width vgg_fer for real time (~0.25 GFLOP per face)."""
    return vgg_fer(num_classes=num_classes, dropout=dropout, width=32)


@register_model
def resnet_fer(num_classes: int = 7, dropout: float = 0.3, width: int = 64) -> nn.Module:
    """ResNet-style net: a stem then 4 stages of residual blocks."""
    widths = (width, width * 2, width * 4, width * 8)
    blocks: list[nn.Module] = [ConvBNAct(1, width)]
    in_ch = width
    for i, w in enumerate(widths):
        blocks.append(ResidualBlock(in_ch, w, stride=1 if i == 0 else 2))
        blocks.append(ResidualBlock(w, w))
        in_ch = w
    return _Classifier(nn.Sequential(*blocks), widths[-1], num_classes, dropout)


@register_model
def tiny_fer(num_classes: int = 7, dropout: float = 0.0) -> nn.Module:
    """A very small net for tests and smoke runs."""
    return _Classifier(_vgg_stages((16, 32), 1), 32, num_classes, dropout)
