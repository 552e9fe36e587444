"""Building blocks of the MOS neck: conv-BN-activation, deformable blocks, FPN and SSH.

Attribute names and ``nn.Sequential`` indices follow the public MOS reference code so that
its checkpoints load: plain blocks are ``Sequential(conv, bn[, act])`` (keys ``0``/``1``),
deformable blocks have ``conv`` (a DCNv2 layer) and ``actf`` (``Sequential(bn[, relu])``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mos_ros.model.deform import ModulatedDeformConv2d

#: LeakyReLU slope of the plain FPN/SSH blocks (the reference uses it for necks <= 64 wide).
LEAKY_SLOPE = 0.1
#: SSH output split: the 3x3 path gets 1/2 of the channels, the 5x5 and 7x7 paths 1/4 each.
SSH_WIDE_SHARE = 2
SSH_NARROW_SHARE = 4


def leaky_relu() -> nn.Module:
    """The neck's activation for plain blocks."""
    return nn.LeakyReLU(negative_slope=LEAKY_SLOPE, inplace=True)


def conv_bn(in_ch: int, out_ch: int, kernel: int, activation: nn.Module | None = None,
            stride: int = 1) -> nn.Sequential:
    """Bias-free conv (same padding), batch norm, and the optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if activation is not None:
        layers.append(activation)
    return nn.Sequential(*layers)


class DeformConvBN(nn.Module):
    """3x3 DCNv2 conv, batch norm and optionally ReLU (the reference's ``DeformConv``)."""

    def __init__(self, in_ch: int, out_ch: int, activate: bool) -> None:
        super().__init__()
        self.conv = ModulatedDeformConv2d(in_ch, out_ch, kernel_size=3, padding=1)
        after: list[nn.Module] = [nn.BatchNorm2d(out_ch)]
        if activate:
            after.append(nn.ReLU(inplace=True))
        self.actf = nn.Sequential(*after)

    def forward(self, x: Tensor) -> Tensor:
        """Deformable conv, then norm (and activation)."""
        return self.actf(self.conv(x))


def _plain_conv3x3(in_ch: int, out_ch: int, activate: bool) -> nn.Module:
    return conv_bn(in_ch, out_ch, 3, leaky_relu() if activate else None)


def _deformable_conv3x3(in_ch: int, out_ch: int, activate: bool) -> nn.Module:
    return DeformConvBN(in_ch, out_ch, activate)


#: 3x3 neck block kind -> factory(in_ch, out_ch, activate). The reference's deformable
#: blocks use ReLU where its plain blocks use LeakyReLU; both are kept as trained.
CONV3X3_BLOCKS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "plain": _plain_conv3x3,
    "dcn": _deformable_conv3x3,
}


def conv3x3_block(in_ch: int, out_ch: int, *, activate: bool, dcn: bool = False) -> nn.Module:
    """A 3x3 conv-BN block of the neck, deformable when ``dcn``."""
    return CONV3X3_BLOCKS["dcn" if dcn else "plain"](in_ch, out_ch, activate)


class FPN(nn.Module):
    """Feature pyramid: 1x1 laterals, top-down nearest upsampling + add, 3x3 merges.

    Inputs and outputs are ordered finest (stride 8) to coarsest (stride 32); the coarsest
    level is the lateral alone, as in the reference.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int, *,
                 dcn: bool = False) -> None:
        super().__init__()
        for index, channels in enumerate(in_channels, start=1):
            self.add_module(f"output{index}", conv_bn(channels, out_channels, 1, leaky_relu()))
        self.merge1 = conv3x3_block(out_channels, out_channels, activate=True, dcn=dcn)
        self.merge2 = conv3x3_block(out_channels, out_channels, activate=True, dcn=dcn)

    @staticmethod
    def _add_upsampled(finer: Tensor, coarser: Tensor) -> Tensor:
        """Add ``coarser`` resized (nearest) to ``finer``'s size; odd sizes need size=, not 2x."""
        return finer + F.interpolate(coarser, size=finer.shape[-2:], mode="nearest")

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Return the three merged maps, finest first."""
        lateral1 = self.output1(features[0])
        lateral2 = self.output2(features[1])
        level3 = self.output3(features[2])
        level2 = self.merge2(self._add_upsampled(lateral2, level3))
        level1 = self.merge1(self._add_upsampled(lateral1, level2))
        return [level1, level2, level3]


class SSH(nn.Module):
    """Single-stage headless context module: 3x3, 5x5 and 7x7 receptive fields, concatenated.

    The 5x5 and 7x7 paths are stacked 3x3 convs sharing their first layer; the three outputs
    (1/2, 1/4, 1/4 of the channels) are concatenated and passed through ReLU.
    """

    def __init__(self, in_ch: int, out_ch: int, *, dcn: bool = False) -> None:
        super().__init__()
        if out_ch % SSH_NARROW_SHARE:
            raise ValueError(f"SSH output channels must be a multiple of {SSH_NARROW_SHARE}")
        wide, narrow = out_ch // SSH_WIDE_SHARE, out_ch // SSH_NARROW_SHARE
        self.conv3X3 = conv3x3_block(in_ch, wide, activate=False, dcn=dcn)
        self.conv5X5_1 = conv3x3_block(in_ch, narrow, activate=True, dcn=dcn)
        self.conv5X5_2 = conv3x3_block(narrow, narrow, activate=False, dcn=dcn)
        self.conv7X7_2 = conv3x3_block(narrow, narrow, activate=True, dcn=dcn)
        self.conv7x7_3 = conv3x3_block(narrow, narrow, activate=False, dcn=dcn)

    def forward(self, x: Tensor) -> Tensor:
        """Concatenate the three receptive-field paths and apply ReLU."""
        shared = self.conv5X5_1(x)
        out = torch.cat((self.conv3X3(x), self.conv5X5_2(shared),
                         self.conv7x7_3(self.conv7X7_2(shared))), dim=1)
        return F.relu(out)
