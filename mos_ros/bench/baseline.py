"""The sequential pipeline MOS replaces: a face detector, then a head-pose network per face.

This is the kind of system the MOS paper times against (its Table 4 and Fig. 4):

1. a RetinaFace-style detector with a MobileNetV1 x0.25 backbone (FPN 64 channels, SSH, class /
   box / landmark heads, 2 anchors per cell), decoded by :mod:`mos_ros.core` exactly as MOS
   is (same anchors, same box decode, same NMS);
2. a Hopenet-style head-pose network (ResNet-50 trunk, three 66-bin heads for yaw, pitch and
   roll) run once per detected face on a 224x224 crop: crop, resize, normalise, forward.

The weights are random: only time is measured. A random detector finds no real faces, so the
benchmark feeds the pose stage a chosen number of crops from fixed boxes
(:func:`fixed_face_boxes`) to control how many faces an image has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from mos_ros.core.anchors import num_anchors
from mos_ros.core.config import ModelMeta, PoseBins
from mos_ros.core.pose import bins_to_degrees
from mos_ros.core.postprocess import DecodeSettings, decode_faces
from mos_ros.core.preprocess import InputSize, prepare
from mos_ros.core.types import HeadPose, RawOutputs
from mos_ros.bench.resnet import RESNET50_BLOCKS, ResNet
from mos_ros.model.heads import DenseHead
from mos_ros.model.layers import FPN, SSH, LEAKY_SLOPE, conv_bn

#: MobileNetV1 x0.25 (RetinaFace "mobilenet0.25"): stem width, then (out channels, stride) of
#: each depthwise-separable block, grouped into the three stages whose outputs feed the FPN.
MOBILENET_STEM = 8
MOBILENET_STAGES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1)),
    ((128, 2),) + ((128, 1),) * 5,
    ((256, 2), (256, 1)),
)
NECK_CHANNELS = 64
ANCHORS_PER_CELL = 2
#: Values per anchor of the detector's outputs (RawOutputs' ``loc``, ``conf``, ``landms``).
BOX_VALUES, CLASS_VALUES, LANDMARK_VALUES = 4, 2, 10
#: Prior face probability the class head starts at (RetinaNet's initialisation), so that a
#: random detector reports few faces, as a trained one does on a typical frame.
FACE_PRIOR = 0.01

#: Hopenet's input: a square RGB crop, scaled to [0, 1] and normalised with ImageNet statistics.
POSE_INPUT_SIZE = 224
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
PIXEL_MAX = 255.0
#: The face box is widened by this fraction of its size on every side before cropping
#: (Hopenet-style crops include hair and chin).
POSE_CROP_MARGIN = 0.25
POSE_ANGLES = ("yaw", "pitch", "roll")

#: Side of the fixed face boxes as a fraction of the image's shorter side.
FIXED_FACE_FRACTION = 0.15


def depthwise_separable(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """3x3 depthwise conv + BN + LeakyReLU, then 1x1 pointwise conv + BN + LeakyReLU."""
    act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch), act,
        nn.Conv2d(in_ch, out_ch, 1, bias=False),
        nn.BatchNorm2d(out_ch), nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    )


class MobileNetV1x025(nn.Module):
    """MobileNetV1 at width x0.25; its three stages end at strides 8, 16 and 32."""

    def __init__(self) -> None:
        """Build the stem (3x3, stride 2) and the three stages of depthwise-separable blocks."""
        super().__init__()
        stem = conv_bn(3, MOBILENET_STEM, 3, nn.LeakyReLU(LEAKY_SLOPE, inplace=True), stride=2)
        in_ch, stages = MOBILENET_STEM, []
        for spec in MOBILENET_STAGES:
            blocks = []
            for out_ch, stride in spec:
                blocks.append(depthwise_separable(in_ch, out_ch, stride))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stage1 = nn.Sequential(stem, *stages[0])
        self.stage2, self.stage3 = stages[1], stages[2]
        self.feature_channels = tuple(spec[-1][0] for spec in MOBILENET_STAGES)

    def feature_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The stride 8, 16 and 32 maps."""
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return c1, c2, self.stage3(c2)


class RetinaFaceMobile(nn.Module):
    """RetinaFace-MobileNet0.25: backbone -> FPN -> SSH per level -> class/box/landmark heads.

    ``forward`` returns ``(loc, conf, landms)`` shaped like the first three MOS outputs, with
    anchors in the order of :func:`mos_ros.core.anchors.generate_anchors`.
    """

    def __init__(self) -> None:
        """Build the network with random weights and the face-prior class bias."""
        super().__init__()
        self.body = MobileNetV1x025()
        self.fpn = FPN(self.body.feature_channels, NECK_CHANNELS)
        levels = len(self.body.feature_channels)
        self.ssh = nn.ModuleList(SSH(NECK_CHANNELS, NECK_CHANNELS) for _ in range(levels))
        self.heads = nn.ModuleDict({
            name: nn.ModuleList(DenseHead(NECK_CHANNELS, ANCHORS_PER_CELL, values)
                                for _ in range(levels))
            for name, values in (("loc", BOX_VALUES), ("conf", CLASS_VALUES),
                                 ("landms", LANDMARK_VALUES))
        })
        self._init_face_prior()

    def _init_face_prior(self) -> None:
        """Bias the face logit down so every anchor starts at probability ``FACE_PRIOR``."""
        prior_logit = float(np.log(FACE_PRIOR / (1.0 - FACE_PRIOR)))
        for head in self.heads["conf"]:
            with torch.no_grad():
                bias = head.conv1x1.bias.view(ANCHORS_PER_CELL, CLASS_VALUES)
                bias[:, 0] = 0.0
                bias[:, 1] = prior_logit

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Raw ``(loc, conf, landms)`` for a BGR, mean-subtracted batch."""
        levels = [ssh(f) for ssh, f in zip(self.ssh, self.fpn(self.body.feature_maps(x)))]
        return tuple(torch.cat([head(f) for head, f in zip(self.heads[name], levels)], dim=1)
                     for name in ("loc", "conf", "landms"))


def _uniform_pose_logits(batch: int, anchors: int, bins: PoseBins) -> np.ndarray:
    """Zero (uninformative) pose logits as a read-only broadcast view: no memory, no copy."""
    return np.broadcast_to(np.zeros((1, 1, bins.num_bins), dtype=np.float32),
                           (batch, anchors, bins.num_bins))


@dataclass
class BaselineDetector:
    """The detector stage: core pre-processing, the RetinaFace network, core decoding."""

    input_size: InputSize = (480, 640)
    settings: DecodeSettings = field(default_factory=DecodeSettings)
    meta: ModelMeta = field(default_factory=ModelMeta)
    net: RetinaFaceMobile = field(default_factory=lambda: RetinaFaceMobile().eval())

    def raw_outputs(self, batch: np.ndarray) -> RawOutputs:
        """Network outputs in MOS's layout; the detector has no pose head, so its pose logits
        are uniform placeholders that :func:`decode_faces` reads only for kept faces."""
        with torch.inference_mode():
            loc, conf, landms = (t.numpy() for t in self.net(torch.from_numpy(batch)))
        pose = _uniform_pose_logits(loc.shape[0], loc.shape[1], self.meta.pose_bins)
        return RawOutputs(loc, conf, landms, pose, pose, pose)

    def detect_boxes(self, image: np.ndarray) -> np.ndarray:
        """Face boxes (K, 4) x1y1x2y2 in image pixels, best first, via :mod:`mos_ros.core`."""
        batch, letterbox = prepare(image, self.input_size, self.meta.input_mean)
        faces = decode_faces(self.raw_outputs(batch), self.meta, letterbox, self.settings)
        return np.array([face.box for face in faces], dtype=np.float64).reshape(-1, 4)

    def expected_anchors(self, height: int, width: int) -> int:
        """Anchors a ``height`` x ``width`` input gives under the shared prior layout."""
        return num_anchors(self.meta.priors, height, width)


class HopenetStyle(ResNet):
    """ResNet-50 trunk with three 66-bin classifiers (Hopenet's ``fc_yaw/pitch/roll``)."""

    def __init__(self, bins: PoseBins = PoseBins()) -> None:
        """Build the trunk without the ImageNet classifier and one linear head per angle."""
        super().__init__(RESNET50_BLOCKS, num_classes=None)
        self.bins = bins
        self.fc_yaw = nn.Linear(self.feature_dim, bins.num_bins)
        self.fc_pitch = nn.Linear(self.feature_dim, bins.num_bins)
        self.fc_roll = nn.Linear(self.feature_dim, bins.num_bins)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Bin logits ``(yaw, pitch, roll)``, each (B, bins), for normalised RGB crops."""
        feats = self.features(x)
        return self.fc_yaw(feats), self.fc_pitch(feats), self.fc_roll(feats)


def widen_box(box: Sequence[float], margin: float, image_hw: tuple[int, int]) -> tuple[int, ...]:
    """Integer box grown by ``margin`` x its size on every side, clipped to the image."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    height, width = image_hw
    left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
    right, bottom = min(width, int(np.ceil(x2 + dx))), min(height, int(np.ceil(y2 + dy)))
    return left, top, max(right, left + 1), max(bottom, top + 1)


def pose_crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """One face as Hopenet's input: widened crop, 224x224, RGB, ImageNet-normalised (3, H, W)."""
    left, top, right, bottom = widen_box(box, POSE_CROP_MARGIN, image.shape[:2])
    crop = cv2.resize(image[top:bottom, left:right], (POSE_INPUT_SIZE, POSE_INPUT_SIZE),
                      interpolation=cv2.INTER_LINEAR)
    rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / PIXEL_MAX
    rgb -= np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)
    rgb /= np.asarray(IMAGENET_STD_RGB, dtype=np.float32)
    return rgb.transpose(2, 0, 1)


@dataclass
class PoseEstimator:
    """The head-pose stage: one crop and one network forward per face, as sequential systems do.

    :meth:`estimate_batched` runs all crops in one forward instead; it is reported separately.
    """

    net: HopenetStyle = field(default_factory=lambda: HopenetStyle().eval())

    def _angles(self, crops: np.ndarray) -> list[HeadPose]:
        """Forward a (B, 3, 224, 224) batch and turn the bin logits into degrees."""
        with torch.inference_mode():
            logits = [t.numpy() for t in self.net(torch.from_numpy(crops))]
        degrees = [bins_to_degrees(angle, self.net.bins) for angle in logits]
        return [HeadPose(*(float(d[i]) for d in degrees)) for i in range(len(crops))]

    def estimate(self, image: np.ndarray, boxes: np.ndarray) -> list[HeadPose]:
        """Head pose of each box, one network pass per face."""
        return [self._angles(pose_crop(image, box)[None])[0] for box in boxes]

    def estimate_batched(self, image: np.ndarray, boxes: np.ndarray) -> list[HeadPose]:
        """Head pose of every box in a single batched network pass."""
        if len(boxes) == 0:
            return []
        return self._angles(np.stack([pose_crop(image, box) for box in boxes]))


def fixed_face_boxes(count: int, image_hw: tuple[int, int]) -> np.ndarray:
    """``count`` square face boxes (x1y1x2y2) laid out on a grid inside the image.

    They stand in for detections, so that the pose stage sees a controlled number of faces.
    """
    height, width = image_hw
    side = FIXED_FACE_FRACTION * min(height, width)
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns)) if count else 0
    boxes = []
    for index in range(count):
        row, col = divmod(index, columns)
        cx = (col + 0.5) * width / columns
        cy = (row + 0.5) * height / rows
        boxes.append((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)
