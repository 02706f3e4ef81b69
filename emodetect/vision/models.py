"""Face-expression CNNs for 48x48 grey input. Each takes raw pixels 0..255 (N x 1 x 48 x 48)."""

from __future__ import annotations

import torch
from torch import nn

from emodetect.errors import InputError
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


class BackboneClassifier(nn.Module):
    """A pre-trained face network fine-tuned for expressions, behind the same contract as the CNNs
    above: raw grey pixels 0..255 (N x 1 x 48 x 48) in, logits out.

    The crop is upsampled to the backbone's input size and repeated to three channels inside the
    graph, so every pipeline, scorer and the service feed it as they feed a 48 px CNN. `backbone`
    is a `TfjsGraph` spec (emodetect.vision.tfjs), kept in the checkpoint so export rebuilds it
    without the original files; `offset` maps 0..255 to what the backbone was trained on.
    """

    def __init__(self, backbone: dict, num_classes: int, input_size: int, dropout: float,
                 offset: tuple[float, float, float], frozen: int = 0):
        super().__init__()
        from emodetect.vision.tfjs import TfjsGraph

        self.input_size = input_size
        self.register_buffer("offset", torch.tensor(offset).reshape(1, 3, 1, 1), persistent=False)
        self.backbone = TfjsGraph(backbone)
        # The stem and first blocks (edges and textures at 56 and 28 px) stay as VGGFace2 trained
        # them: freezing them makes a fine-tuning step about 2.5x faster on a CPU.
        for param in list(self.backbone.parameters())[:frozen]:
            param.requires_grad_(False)
        with torch.no_grad():  # the feature width, from the graph itself
            features = self.backbone(torch.zeros(1, 3, input_size, input_size)).flatten(1).shape[1]
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns logits."""
        if x.shape[-1] != self.input_size:
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          align_corners=False, antialias=False)
        x = x.expand(-1, 3, -1, -1) - self.offset
        return self.head(self.backbone(x))


def _faceres(num_classes: int, backbone: dict | None, input_size: int, dropout: float,
             frozen: int | None = None) -> nn.Module:
    if not backbone:
        raise InputError("faceres models start from the pre-trained HSE-FaceRes network: give its TF.js "
                         "graph with --pretrained PATH/faceres-deep.json")
    # The upstream Keras code's input: BGR 0..255 less VGGFace2's channel means. A frozen linear probe
    # scored it 0.408 against 0.380 for raw pixels and 0.307 for -1..1
    # (docs/training/faceres/probe_normalisation.py; 3,000 Training faces, 1,000 PublicTest, 112 px).
    return BackboneClassifier(backbone, num_classes, input_size, dropout, offset=VGGFACE2_BGR_MEAN,
                              frozen=FACERES_FROZEN if frozen is None else frozen)


VGGFACE2_BGR_MEAN = (91.4953, 103.8827, 131.0912)


FACERES_FROZEN = 17  # weights of the stem and the first three depthwise-separable blocks


@register_model
def faceres_fer(num_classes: int = 7, backbone: dict | None = None, dropout: float = 0.2) -> nn.Module:
    """HSE-FaceRes (MobileNet, VGGFace2) fine-tuned at 112 px: ~0.14 GFLOP per face."""
    return _faceres(num_classes, backbone, 112, dropout)


@register_model
def faceres_fer_all(num_classes: int = 7, backbone: dict | None = None, dropout: float = 0.2) -> nn.Module:
    """faceres_fer with every layer trained: the second stage after a frozen-start run
    (`--init` its best.pt), about 1.6x the step time."""
    return _faceres(num_classes, backbone, 112, dropout, frozen=0)


@register_model
def faceres_fer_160(num_classes: int = 7, backbone: dict | None = None, dropout: float = 0.2) -> nn.Module:
    """HSE-FaceRes at 160 px: ~0.29 GFLOP per face."""
    return _faceres(num_classes, backbone, 160, dropout)


@register_model
def faceres_fer_160_all(num_classes: int = 7, backbone: dict | None = None, dropout: float = 0.2) -> nn.Module:
    """faceres_fer_160 with every layer trained: the stage after a frozen-start 160 px run."""
    return _faceres(num_classes, backbone, 160, dropout, frozen=0)


@register_model
def faceres_fer_224(num_classes: int = 7, backbone: dict | None = None, dropout: float = 0.2) -> nn.Module:
    """HSE-FaceRes at its native 224 px: ~0.57 GFLOP per face."""
    return _faceres(num_classes, backbone, 224, dropout)
