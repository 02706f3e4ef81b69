"""Building blocks shared by every model family."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv -> BatchNorm -> ReLU, the unit every CNN here is made of."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, dims: int = 2):
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        super().__init__(
            conv(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
            norm(out_ch),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two ConvBNAct with an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            ConvBNAct(in_ch, out_ch, stride=stride),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class PixelNormalize(nn.Module):
    """Maps raw grey pixels 0..255 to the range the network trained on, inside the graph."""

    def __init__(self, mean: float = 128.0, std: float = 64.0):
        super().__init__()
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
