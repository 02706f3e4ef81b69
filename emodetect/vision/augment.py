"""Batched augmentation on tensors: one affine resample per batch keeps both cores on the model.

Shifts, scale, rotation and flips cover framing and pose; brightness, contrast and gamma cover
lighting; random erasing covers occlusion (hands, glasses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    rotate_deg: float = 15.0
    scale: float = 0.15
    shift: float = 0.12
    flip: float = 0.5
    brightness: float = 30.0
    contrast: float = 0.35
    gamma: float = 0.3
    erase: float = 0.5


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """x: float N x 1 x H x W raw pixels 0..255; returns an augmented copy in the same range."""
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    angle = uniform(-cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    scale = uniform(1 - cfg.scale, 1 + cfg.scale)
    flip = torch.where(torch.rand(n, generator=gen) < cfg.flip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos * flip, -sin, uniform(-cfg.shift, cfg.shift) * 2], dim=1),
        torch.stack([sin * flip, cos, uniform(-cfg.shift, cfg.shift) * 2], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    contrast = uniform(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1)
    bright = uniform(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1)
    out = ((out - mean) * contrast + mean + bright).clamp(0, 255)
    gamma = torch.exp(uniform(-cfg.gamma, cfg.gamma)).view(n, 1, 1, 1)
    out = 255 * (out / 255) ** gamma

    if cfg.erase > 0:
        h, w = x.shape[-2:]
        area = uniform(0.02, 0.2) * h * w
        aspect = torch.exp(uniform(math.log(0.3), math.log(3.3)))
        eh = (area * aspect).sqrt().clamp(1, h)
        ew = (area / aspect).sqrt().clamp(1, w)
        top = torch.rand(n, generator=gen) * (h - eh)
        left = torch.rand(n, generator=gen) * (w - ew)
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        box = ((rows >= top.view(n, 1, 1)) & (rows < (top + eh).view(n, 1, 1))
               & (cols >= left.view(n, 1, 1)) & (cols < (left + ew).view(n, 1, 1)))
        box &= (torch.rand(n, generator=gen) < cfg.erase).view(n, 1, 1)
        noise = torch.rand(out.shape, generator=gen) * 255
        out = torch.where(box.unsqueeze(1), noise, out)
    return out
