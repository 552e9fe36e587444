"""The MOS network: backbone -> FPN -> SSH -> stitch convs -> cross-stitch -> task heads.

``MOS.forward`` always returns raw logits ``(loc, conf, landms, yaw, pitch, roll)`` with
shapes (B, N, 4), (B, N, 2), (B, N, 10), (B, N, bins) x 3. Anchors are ordered level ->
row -> column -> anchor, N = sum over strides s of ceil(H/s) * ceil(W/s) * anchors_per_cell.
Softmax, decoding and NMS live in :mod:`mos_ros.core`, shared by every backend.

Module names follow the public MOS reference code (``body``, ``fpn``, ``ssh1..3``,
``stitch_*``, ``cross_stitch``, ``ClassHead``, ``BboxHead``, ``LandmarkHead``,
``PoseHead_y/p/r``), one module per pyramid level in each ``ModuleList``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mos_ros.core.config import OUTPUT_NAMES, ModelMeta, PoseBins, PriorConfig
from mos_ros.model.backbones import FEATURE_STRIDES, build_backbone
from mos_ros.model.heads import HEAD_KINDS, CrossStitchUnit, StitchConv
from mos_ros.model.layers import FPN, SSH

PYRAMID_LEVELS = len(FEATURE_STRIDES)
NECK_CHANNELS = 64


@dataclass(frozen=True)
class VariantConfig:
    """Architecture of one MOS variant."""

    name: str
    #: Name in :data:`mos_ros.model.backbones.BACKBONES`.
    backbone: str
    #: Width of the FPN, SSH and heads.
    neck_channels: int = NECK_CHANNELS
    #: Deformable convolutions in the FPN merges and SSH (blocks ONNX/ncnn export).
    dcn: bool = False
    num_bins: int = PoseBins().num_bins
    anchors_per_cell: int = PriorConfig().anchors_per_cell
    description: str = ""


#: Variant name -> its configuration.
VARIANTS: dict[str, VariantConfig] = {}


def register_variant(name: str, **fields: Any) -> VariantConfig:
    """Create and register the :class:`VariantConfig` ``name``; returns it."""
    if name in VARIANTS:
        raise ValueError(f"MOS variant {name!r} is already registered")
    VARIANTS[name] = VariantConfig(name=name, **fields)
    return VARIANTS[name]


register_variant("mos-s", backbone="shufflenet_v2_x1_0",
                 description="MOS-S: ShuffleNetV2 x1.0 backbone (paper's small model)")
register_variant("mos-s-0.5", backbone="shufflenet_v2_x0_5",
                 description="ShuffleNetV2 x0.5 backbone: fastest, for ARM boards")
register_variant("mos-mbv2", backbone="mobilenet_v2",
                 description="MOS-M: MobileNetV2 backbone (paper's medium model)")


@dataclass(frozen=True)
class TaskWiring:
    """How one output is computed from a pyramid level, by checkpoint module names.

    The reference code feeds the cross-stitch slot ``classhead`` from ``stitch_BboxHead``
    and the slot ``bboxhead`` from ``stitch_classhead`` (its lists are in a different order
    than its task names); its trained weights depend on this, so it is kept.
    """

    output: str
    head: str
    kind: str
    slot: str
    stitch: str
    #: Values per anchor; 0 means the pose bin count of the variant.
    values: int = 0


TASKS: tuple[TaskWiring, ...] = (
    TaskWiring("loc", "BboxHead", "dense", slot="bboxhead", stitch="stitch_classhead",
               values=4),
    TaskWiring("conf", "ClassHead", "dense", slot="classhead", stitch="stitch_BboxHead",
               values=2),
    TaskWiring("landms", "LandmarkHead", "dense", slot="landmarkhead",
               stitch="stitch_LandmarkHead", values=10),
    TaskWiring("yaw", "PoseHead_y", "pose", slot="pose_y", stitch="stitch_PoseHead_y"),
    TaskWiring("pitch", "PoseHead_p", "pose", slot="pose_p", stitch="stitch_PoseHead_p"),
    TaskWiring("roll", "PoseHead_r", "pose", slot="pose_r", stitch="stitch_PoseHead_r"),
)
#: Cross-stitch slot order of the reference (the order contributions are summed in).
CROSS_STITCH_SLOTS = ("classhead", "bboxhead", "landmarkhead", "pose_y", "pose_p", "pose_r")


def _level_key(level: int) -> str:
    """Name of a pyramid level's cross-stitch unit (``fpn1`` is the finest)."""
    return f"fpn{level + 1}"


def default_meta(config: VariantConfig) -> ModelMeta:
    """Metadata of a freshly built model of ``config``."""
    return ModelMeta(variant=config.name, pose_bins=PoseBins(num_bins=config.num_bins),
                     description=config.description)


def _check_meta_fits(config: VariantConfig, meta: ModelMeta) -> None:
    """The anchor layout and bin count in ``meta`` must be what the network computes."""
    if tuple(meta.priors.steps) != FEATURE_STRIDES:
        raise ValueError(f"model metadata steps {meta.priors.steps} != network strides "
                         f"{FEATURE_STRIDES}")
    if meta.priors.anchors_per_cell != config.anchors_per_cell:
        raise ValueError(f"model metadata has {meta.priors.anchors_per_cell} anchors per "
                         f"cell, the network predicts {config.anchors_per_cell}")
    if meta.pose_bins.num_bins != config.num_bins:
        raise ValueError(f"model metadata has {meta.pose_bins.num_bins} pose bins, the "
                         f"network predicts {config.num_bins}")


class MOS(nn.Module):
    """Multi-task face detector: boxes, scores, five landmarks and head-pose bins.

    ``model.config`` is the architecture, ``model.meta`` the :class:`ModelMeta` that travels
    with exported files.
    """

    def __init__(self, config: VariantConfig, meta: ModelMeta | None = None) -> None:
        super().__init__()
        meta = meta if meta is not None else default_meta(config)
        _check_meta_fits(config, meta)
        self.config = config
        self.meta = meta
        width = config.neck_channels
        self.body = build_backbone(config.backbone, with_classifier=False)
        self.fpn = FPN(self.body.feature_channels, width, dcn=config.dcn)
        for level in range(PYRAMID_LEVELS):
            self.add_module(f"ssh{level + 1}", SSH(width, width, dcn=config.dcn))
        for task in TASKS:
            self.add_module(task.stitch, nn.ModuleList(
                StitchConv(width) for _ in range(PYRAMID_LEVELS)))
        self.cross_stitch = nn.ModuleDict({
            _level_key(level): CrossStitchUnit(CROSS_STITCH_SLOTS, width)
            for level in range(PYRAMID_LEVELS)
        })
        for task in TASKS:
            head = HEAD_KINDS[task.kind]
            values = task.values or config.num_bins
            self.add_module(task.head, nn.ModuleList(
                head(width, config.anchors_per_cell, values) for _ in range(PYRAMID_LEVELS)))

    def pyramid(self, x: Tensor) -> list[Tensor]:
        """Backbone, FPN and SSH: the three 64-channel context maps, finest first."""
        levels = self.fpn(self.body.feature_maps(x))
        return [getattr(self, f"ssh{index + 1}")(level) for index, level in enumerate(levels)]

    def predict_level(self, level: int, feature: Tensor) -> dict[str, Tensor]:
        """All six task outputs of one pyramid level, keyed by output name."""
        slot_inputs = {task.slot: getattr(self, task.stitch)[level](feature) for task in TASKS}
        mixed = self.cross_stitch[_level_key(level)](slot_inputs)
        return {task.output: getattr(self, task.head)[level](mixed[task.slot])
                for task in TASKS}

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Raw outputs ``(loc, conf, landms, yaw, pitch, roll)`` for a BGR, mean-subtracted batch.

        ``x`` is (B, 3, H, W) of any H and W; see the module docstring for output shapes.
        """
        per_level = [self.predict_level(level, feature)
                     for level, feature in enumerate(self.pyramid(x))]
        outputs = [torch.cat([level[name] for level in per_level], dim=1)
                   for name in OUTPUT_NAMES]
        return tuple(outputs)


def variant_config(variant: str) -> VariantConfig:
    """The registered configuration ``variant``; ValueError lists the known ones."""
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown MOS variant {variant!r}; known: "
                         f"{', '.join(sorted(VARIANTS))}") from None


def build_model(variant: str = "mos-s", *, dcn: bool = False,
                meta: ModelMeta | None = None) -> MOS:
    """Build an untrained MOS of a registered ``variant``.

    ``meta`` (e.g. read from a checkpoint) sets the pose bin count and anchor layout; by
    default the variant's own are used.
    """
    config = dataclasses.replace(variant_config(variant), dcn=dcn)
    if meta is not None:
        if meta.variant != variant:
            raise ValueError(f"model metadata is for variant {meta.variant!r}, not {variant!r}")
        config = dataclasses.replace(config, num_bins=meta.pose_bins.num_bins,
                                     anchors_per_cell=meta.priors.anchors_per_cell)
    return MOS(config, meta)
