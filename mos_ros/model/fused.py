"""The inference form of MOS: stitch convs, cross-stitch and dense heads folded into one conv.

Everything between a pyramid level's SSH output and the predictions is linear up to the
pose heads' 3x3 conv: six 1x1 stitch convs, a channel-wise cross-stitch mix of their
outputs, and (for box, class and landmarks) a 1x1 prediction conv. A composition of 1x1
convs and channel scales is one 1x1 conv, so each level needs a single conv whose output
channels are the box, class and landmark logits followed by the three pose heads' mixed
inputs. The pose heads (3x3 conv, BN, ReLU, 1x1) run unchanged on those.

:func:`fuse_for_inference` builds that network from a trained :class:`~mos_ros.model.mos.MOS`;
it computes the same outputs (up to float rounding) with about a tenth of the head work
and none of the cross-stitch's element-wise passes. Exported files and the torch backend
use it; training uses :class:`MOS`, whose checkpoints keep the reference layout.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mos_ros.core.config import OUTPUT_NAMES
from mos_ros.model.heads import DenseHead, PoseHead, flatten_anchors
from mos_ros.model.mos import CROSS_STITCH_SLOTS, MOS, PYRAMID_LEVELS, TASKS, TaskWiring


def _linear_map(conv: nn.Conv2d) -> tuple[Tensor, Tensor]:
    """A 1x1 conv as (matrix (out, in), bias (out,))."""
    weight = conv.weight.detach().flatten(1)
    bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(weight.shape[0])
    return weight, bias


def _mixed_input_map(model: MOS, level: int, task: TaskWiring) -> tuple[Tensor, Tensor]:
    """(matrix, bias) taking a level's SSH features to ``task``'s cross-stitched input."""
    stitch_of_slot = {t.slot: getattr(model, t.stitch)[level] for t in TASKS}
    weights = model.cross_stitch[f"fpn{level + 1}"].cross_stitch_unit[task.slot]
    matrix, bias = 0.0, 0.0
    for slot in CROSS_STITCH_SLOTS:
        scale = weights[slot].param.detach()
        stitch_matrix, stitch_bias = _linear_map(stitch_of_slot[slot].conv1x1)
        matrix = matrix + scale[:, None] * stitch_matrix
        bias = bias + scale * stitch_bias
    return matrix, bias


def _task_map(model: MOS, level: int, task: TaskWiring) -> tuple[Tensor, Tensor]:
    """(matrix, bias) of everything linear from SSH features to what ``task`` needs next:
    its logits for a dense head, its mixed features for a pose head."""
    matrix, bias = _mixed_input_map(model, level, task)
    head = getattr(model, task.head)[level]
    if isinstance(head, DenseHead):
        head_matrix, head_bias = _linear_map(head.conv1x1)
        return head_matrix @ matrix, head_matrix @ bias + head_bias
    return matrix, bias


class FusedLevel(nn.Module):
    """One pyramid level's predictions: one 1x1 conv, then the pose heads on their slices."""

    def __init__(self, mix: nn.Conv2d, splits: tuple[int, ...], values: tuple[int, ...],
                 pose_heads: dict[str, PoseHead]) -> None:
        super().__init__()
        self.mix = mix
        self.splits = splits
        self.values = values
        self.pose_heads = nn.ModuleDict(pose_heads)

    def forward(self, feature: Tensor) -> dict[str, Tensor]:
        """All six outputs of this level, keyed by output name, flattened per anchor."""
        parts = torch.split(self.mix(feature), self.splits, dim=1)
        outputs = {}
        for task, part, values in zip(TASKS, parts, self.values):
            if task.output in self.pose_heads:
                outputs[task.output] = self.pose_heads[task.output](part)
            else:
                outputs[task.output] = flatten_anchors(part, values)
        return outputs


def _fuse_level(model: MOS, level: int) -> FusedLevel:
    """The :class:`FusedLevel` computing ``model``'s predictions at ``level``."""
    maps = [_task_map(model, level, task) for task in TASKS]
    matrix = torch.cat([m for m, _ in maps])
    mix = nn.Conv2d(matrix.shape[1], matrix.shape[0], kernel_size=1)
    with torch.no_grad():
        mix.weight.copy_(matrix[:, :, None, None])
        mix.bias.copy_(torch.cat([b for _, b in maps]))
    heads = {task.output: getattr(model, task.head)[level] for task in TASKS}
    pose_heads = {name: head for name, head in heads.items() if isinstance(head, PoseHead)}
    values = tuple(heads[task.output].values for task in TASKS)
    return FusedLevel(mix, tuple(m.shape[0] for m, _ in maps), values, pose_heads)


class FusedMOS(nn.Module):
    """A trained MOS in inference form; same inputs, outputs and ``meta`` as the original."""

    def __init__(self, model: MOS) -> None:
        super().__init__()
        self.config = model.config
        self.meta = model.meta
        self.body = model.body
        self.fpn = model.fpn
        self.ssh = nn.ModuleList(getattr(model, f"ssh{i + 1}") for i in range(PYRAMID_LEVELS))
        self.levels = nn.ModuleList(_fuse_level(model, i) for i in range(PYRAMID_LEVELS))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Raw outputs ``(loc, conf, landms, yaw, pitch, roll)``, as :meth:`MOS.forward`."""
        features = self.fpn(self.body.feature_maps(x))
        per_level = [level(ssh(feature))
                     for level, ssh, feature in zip(self.levels, self.ssh, features)]
        return tuple(torch.cat([level[name] for level in per_level], dim=1)
                     for name in OUTPUT_NAMES)


def fuse_for_inference(model: MOS) -> FusedMOS:
    """The inference form of ``model``, which is put in eval mode and otherwise unchanged.

    The fused network shares the backbone, FPN, SSH and pose-head modules with ``model``,
    so it must not be trained; BN layers use their running statistics.
    """
    return FusedMOS(model.eval()).eval()
