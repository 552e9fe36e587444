"""ResNet-50 (bottleneck blocks, stride on the 3x3 conv) with torchvision's state_dict key names.

Used as the trunk of the Hopenet-style head-pose network in the sequential baseline
(:mod:`mos_ros.bench.baseline`). The key names (``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``, ..., ``fc.weight``) match
torchvision's ``resnet50`` so its published weights load unchanged, without importing torchvision.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

#: Channels entering the first residual stage (after the 7x7 stem).
STEM_CHANNELS = 64
STEM_KERNEL = 7
STEM_STRIDE = 2
POOL_KERNEL = 3
POOL_STRIDE = 2
#: Bottleneck width per stage; a block's output has ``EXPANSION`` times as many channels.
STAGE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
#: Stride of the first block of each stage (stage 1 follows the max-pool, so it keeps the size).
STAGE_STRIDES: tuple[int, ...] = (1, 2, 2, 2)
EXPANSION = 4
RESNET50_BLOCKS: tuple[int, ...] = (3, 4, 6, 3)
IMAGENET_CLASSES = 1000


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with 'same' padding and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias (a BatchNorm follows)."""
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, "ResNet v1.5") -> 1x1 expand, plus a shortcut."""

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        """Build one block; a projection shortcut is added when shape or channels change."""
        super().__init__()
        out_ch = width * EXPANSION
        self.conv1 = conv1x1(in_ch, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum followed by ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Bottleneck ResNet: stem, four stages, global average pool, optional classifier ``fc``.

    With ``num_classes=None`` there is no ``fc`` and :meth:`forward` returns the pooled
    feature vector (what a task-specific head such as Hopenet's pose bins consumes).
    :meth:`feature_maps` gives the stride 8/16/32 maps, as the detector backbones do.
    """

    #: Key prefixes of the ImageNet classification tail.
    classifier_prefixes: tuple[str, ...] = ("fc.",)

    def __init__(self, blocks: Sequence[int],
                 num_classes: Optional[int] = IMAGENET_CLASSES) -> None:
        """Build the network; ``blocks`` is the number of bottlenecks per stage."""
        super().__init__()
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, STEM_KERNEL, stride=STEM_STRIDE,
                               padding=STEM_KERNEL // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(POOL_KERNEL, stride=POOL_STRIDE, padding=POOL_KERNEL // 2)
        in_ch = STEM_CHANNELS
        for index, (count, width, stride) in enumerate(zip(blocks, STAGE_WIDTHS, STAGE_STRIDES)):
            setattr(self, f"layer{index + 1}", self._make_stage(in_ch, width, count, stride))
            in_ch = width * EXPANSION
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_ch
        self.feature_channels = tuple(width * EXPANSION for width in STAGE_WIDTHS[1:])
        self.fc = nn.Linear(in_ch, num_classes) if num_classes else None
        self._init_weights()

    @staticmethod
    def _make_stage(in_ch: int, width: int, count: int, stride: int) -> nn.Sequential:
        """One stage: the first block changes stride/channels, the rest keep them."""
        layers = [Bottleneck(in_ch, width, stride)]
        layers += [Bottleneck(width * EXPANSION, width) for _ in range(count - 1)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        """He-normal convolutions and unit BatchNorm, as torchvision initialises ResNet."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def feature_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outputs of ``layer2``, ``layer3`` and ``layer4`` (strides 8, 16 and 32)."""
        c2 = self.layer2(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x))))))
        c3 = self.layer3(c2)
        return c2, c3, self.layer4(c3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features, shape (B, 2048) for ResNet-50."""
        return torch.flatten(self.avgpool(self.feature_maps(x)[-1]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, or the pooled features when built without a classifier."""
        feats = self.features(x)
        return feats if self.fc is None else self.fc(feats)


def resnet50(num_classes: Optional[int] = IMAGENET_CLASSES) -> ResNet:
    """ResNet-50 ([3, 4, 6, 3] bottlenecks); 25,557,032 parameters with 1000 classes."""
    return ResNet(RESNET50_BLOCKS, num_classes)
