"""The multi-task parts of MOS: stitch convs, the cross-stitch unit and prediction heads.

Names (``conv1x1``, ``Conv_pose``, ``cross_stitch_unit``, ``param``) are the public MOS
reference code's, so that its checkpoints load.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mos_ros.model.layers import conv_bn

#: Cross-stitch initialisation: weight of a task's own features and of each other task's.
SAME_TASK_WEIGHT = 0.9
OTHER_TASK_WEIGHT = 0.1
#: The pose heads widen the features by this factor in their 3x3 conv.
POSE_HIDDEN_FACTOR = 2


def flatten_anchors(x: Tensor, values: int) -> Tensor:
    """(B, A*values, H, W) -> (B, H*W*A, values), anchors ordered row -> column -> anchor.

    Reshapes with -1 and the run-time batch size only, so exported graphs keep H and W
    dynamic (``unflatten`` would be frozen by the TorchScript ONNX exporter).
    """
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, values)


class ChannelScale(nn.Module):
    """Multiply each channel by its own learnable weight."""

    def __init__(self, channels: int, value: float) -> None:
        super().__init__()
        self.param = nn.Parameter(torch.full((channels,), float(value)))

    def forward(self, x: Tensor) -> Tensor:
        """Scale ``x`` (B, C, H, W) channel-wise."""
        return x * self.param.view(1, -1, 1, 1)


class CrossStitchUnit(nn.Module):
    """Channel-wise cross-stitch (Misra et al., 2016): out_i = sum_j a_ij * x_j per channel.

    ``cross_stitch_unit[i][j]`` holds a_ij; it starts at 0.9 for i == j and 0.1 otherwise.
    """

    def __init__(self, tasks: Sequence[str], channels: int,
                 same: float = SAME_TASK_WEIGHT, other: float = OTHER_TASK_WEIGHT) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.cross_stitch_unit = nn.ModuleDict({
            target: nn.ModuleDict({
                source: ChannelScale(channels, same if source == target else other)
                for source in self.tasks
            })
            for target in self.tasks
        })

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Mix the per-task features; every task's input must be given."""
        mixed = {}
        for target in self.tasks:
            weights = self.cross_stitch_unit[target]
            contributions = [weights[source](features[source]) for source in self.tasks]
            mixed[target] = sum(contributions[1:], contributions[0])
        return mixed


class StitchConv(nn.Module):
    """Task-specific 1x1 conv in front of the cross-stitch unit (channels unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the 1x1 conv."""
        return self.conv1x1(x)


class DenseHead(nn.Module):
    """1x1 conv predicting ``values`` numbers per anchor (class, box or landmark logits)."""

    def __init__(self, channels: int, anchors: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(channels, anchors * values, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Return (B, H*W*anchors, values)."""
        return flatten_anchors(self.conv1x1(x), self.values)


class PoseHead(nn.Module):
    """Angle-bin logits: 3x3 conv to twice the width + BN + ReLU, then a 1x1 conv."""

    def __init__(self, channels: int, anchors: int, values: int) -> None:
        super().__init__()
        hidden = channels * POSE_HIDDEN_FACTOR
        self.values = values
        self.conv1x1 = nn.Conv2d(hidden, anchors * values, kernel_size=1)
        self.Conv_pose = conv_bn(channels, hidden, 3, nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        """Return (B, H*W*anchors, bins)."""
        return flatten_anchors(self.conv1x1(self.Conv_pose(x)), self.values)


#: Head kind -> module class taking (channels, anchors, values).
HEAD_KINDS: dict[str, type[nn.Module]] = {"dense": DenseHead, "pose": PoseHead}
