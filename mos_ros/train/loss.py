"""The MOS multi-task loss: OHEM softmax classification, smooth-L1 boxes and landmarks, and
pose as bin cross-entropy plus beta times the squared error of the expected angle.

Normalisation follows RetinaFace: class and box terms are divided by the number of positive
anchors in the batch, the landmark and pose terms by the number of positives that carry those
labels (faces without them are masked out, never trained toward zero). The expected angle is
the softmax expectation over :func:`mos_ros.core.pose.bin_centres`, the same numbers
:func:`mos_ros.core.pose.bins_to_degrees` uses at inference.

With ``mirror_weight`` > 0 the batch holds mirror pairs (``sample.mirror_pairs``): image
``2k + 1`` is image ``2k`` mirrored. A fifth term then pulls the readings of a face and of its
mirror image together: at each pose-labelled anchor of an even image, the smooth-L1 distance
(degrees) between its expected yaw, pitch and roll and those of the mirror anchor in the next
image with yaw and roll negated, as :func:`mos_ros.core.pose.mirror_poses` says. The labels
already agree; the term makes the network's two readings agree as well, which a mirror test
of real photos asks of it.

The four task terms are combined by a weighting chosen in :class:`LossConfig`: ``heuristic``
(fixed weights, RetinaFace's 2:1:1 plus 0.25 for pose) or ``uncertainty`` (the paper's Eq. 7,
learned temperature and observation noises; :mod:`mos_ros.train.uncertainty`).

Under data-parallel training the counts that normalise the terms are reduced over all
processes (``count_normaliser``), so the average of the per-process losses is exactly the loss
of one process on the whole global batch (:mod:`mos_ros.train.distributed`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mos_ros.core.config import PoseBins
from mos_ros.core.pose import MIRROR_POSE_SIGNS, bin_centres
from mos_ros.core.validation import Rule, Validated
from mos_ros.train.uncertainty import UncertaintyWeighting

ANGLE_NAMES = ("yaw", "pitch", "roll")
_NON_NEGATIVE = ("cls_weight", "box_weight", "landmark_weight", "pose_weight", "negative_ratio",
                 "min_negatives", "pose_beta", "mirror_weight")


@dataclass(frozen=True)
class LossConfig(Validated):
    """Task weights (cls:box:landmarks:pose), OHEM ratio and the pose MSE weight beta."""

    cls_weight: float = 2.0
    box_weight: float = 1.0
    landmark_weight: float = 1.0
    pose_weight: float = 0.25
    negative_ratio: float = 3.0
    #: Negatives kept in an image without any positive anchor (0: such images add no loss).
    min_negatives: int = 0
    pose_beta: float = 0.001
    #: Weight of the mirror-consistency term (needs ``sample.mirror_pairs``); 0: off.
    mirror_weight: float = 0.0
    #: ``heuristic``: the fixed weights above. ``uncertainty``: the MOS paper's Eq. 7 with a
    #: learned temperature and noise per task, starting at the fixed weights.
    weighting: str = "heuristic"

    def rules(self) -> list[Rule]:
        """Weights and ratios non-negative, a known weighting, positive starting weights."""
        return [*((name, getattr(self, name) >= 0, ">= 0") for name in _NON_NEGATIVE),
                ("weighting", self.weighting in WEIGHTINGS, f"one of {sorted(WEIGHTINGS)}"),
                ("task_weights", self.weighting != "uncertainty" or min(self.task_weights) > 0,
                 "> 0 with weighting 'uncertainty', which starts from them (they must then "
                 "be > 0)")]

    @property
    def task_weights(self) -> tuple[float, float, float, float]:
        """The fixed weights in the order of :data:`mos_ros.train.uncertainty.TASKS`."""
        return (self.cls_weight, self.box_weight, self.landmark_weight, self.pose_weight)


@dataclass(frozen=True)
class LossParts:
    """The weighted total and each unweighted task term (scalars).

    ``extras`` holds the learned weighting's state (weights, temperature, noises) to log.
    """

    total: Tensor
    cls: Tensor
    box: Tensor
    landmarks: Tensor
    pose: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)

    def as_floats(self) -> dict[str, float]:
        """Plain numbers for logging."""
        return {name: float(getattr(self, name).detach()) for name in
                ("total", "cls", "box", "landmarks", "pose")}


class HeuristicWeighting(nn.Module):
    """Fixed task weights: ``cls_weight * cls + box_weight * box + ...``."""

    def __init__(self, config: LossConfig):
        super().__init__()
        self.config = config

    def forward(self, cls: Tensor, box: Tensor, landmarks: Tensor, pose: Tensor) -> Tensor:
        """The weighted sum of the four task terms."""
        cfg = self.config
        return (cfg.cls_weight * cls + cfg.box_weight * box + cfg.landmark_weight * landmarks
                + cfg.pose_weight * pose)

    def extras(self) -> dict[str, Tensor]:
        """Nothing is learned, nothing to log."""
        return {}


class _UncertaintyFromConfig(UncertaintyWeighting):
    """:class:`UncertaintyWeighting` started at the config's fixed weights."""

    def __init__(self, config: LossConfig):
        super().__init__(config.task_weights)


#: Loss weightings by their config name.
WEIGHTINGS: dict[str, type[nn.Module]] = {"heuristic": HeuristicWeighting,
                                          "uncertainty": _UncertaintyFromConfig}


def local_count(count: Tensor) -> Tensor:
    """The normaliser of a loss term in one process: the count itself, at least 1."""
    return count.clamp(min=1).float()


def hard_negative_mask(class_loss: Tensor, labels: Tensor, ratio: float,
                       min_negatives: int = 0) -> Tensor:
    """Per image, the ``ratio`` x positives background anchors with the highest class loss.

    ``class_loss`` and ``labels`` are (B, N); returns a bool (B, N) mask of chosen negatives.
    """
    positive = labels > 0
    loss = class_loss.detach().masked_fill(positive, float("-inf"))
    num_pos = positive.sum(dim=1, keepdim=True)
    num_neg = torch.clamp(torch.clamp((num_pos * ratio).long(), min=min_negatives),
                          max=labels.shape[1] - num_pos)
    order = loss.argsort(dim=1, descending=True)
    rank = order.argsort(dim=1)
    return (rank < num_neg) & ~positive


def expected_angle(logits: Tensor, centres: Tensor) -> Tensor:
    """Softmax expectation of the bin centres (degrees), the torch twin of bins_to_degrees."""
    return torch.softmax(logits, dim=-1) @ centres


class MultiTaskLoss(nn.Module):
    """Loss of the six MOS outputs against :class:`~mos_ros.train.targets.AnchorTargets`."""

    def __init__(self, pose_bins: PoseBins = PoseBins(), config: LossConfig = LossConfig(),
                 count_normaliser: Callable[[Tensor], Tensor] = local_count,
                 mirror_order: np.ndarray | None = None):
        """``mirror_order`` (from :func:`mos_ros.core.anchors.mirrored_anchor_order` at the
        training input size) is needed when ``config.mirror_weight`` > 0."""
        super().__init__()
        if config.mirror_weight > 0 and mirror_order is None:
            raise ValueError("loss mirror_weight > 0 needs the anchors' mirror order "
                             "(train with sample.mirror_pairs)")
        self.config = config
        self.count_normaliser = count_normaliser
        self.weighting = WEIGHTINGS[config.weighting](config)
        self.register_buffer("centres", torch.as_tensor(bin_centres(pose_bins),
                                                        dtype=torch.float32))
        order = np.arange(0) if mirror_order is None else np.asarray(mirror_order)
        self.register_buffer("mirror_order", torch.as_tensor(order, dtype=torch.long),
                             persistent=False)
        self.register_buffer("mirror_signs", torch.as_tensor(MIRROR_POSE_SIGNS,
                                                             dtype=torch.float32),
                             persistent=False)

    def forward(self, outputs: tuple[Tensor, ...], targets: dict[str, Tensor]) -> LossParts:
        """``outputs`` as the network returns them; ``targets`` as the data loader stacks them.

        Computed in the criterion's precision: float32 under AMP, float64 for a reference.
        """
        loc, conf, landms, *pose_logits = (o.to(self.centres.dtype) for o in outputs)
        labels = targets["labels"]
        positive = labels > 0
        num_pos = self.count_normaliser(positive.sum())
        cls = self._classification(conf, labels) / num_pos
        box = F.smooth_l1_loss(loc[positive], targets["loc"][positive], reduction="sum") / num_pos
        landmarks = self._landmarks(landms, targets)
        pose = self._pose(pose_logits, targets)
        total = self.weighting(cls, box, landmarks, pose)
        extras = self.weighting.extras()
        if self.config.mirror_weight > 0:
            mirror = self._mirror(pose_logits, targets["pose_mask"])
            total = total + self.config.mirror_weight * mirror
            extras = {**extras, "mirror": mirror.detach()}
        return LossParts(total=total, cls=cls, box=box, landmarks=landmarks, pose=pose,
                         extras=extras)

    def _classification(self, conf: Tensor, labels: Tensor) -> Tensor:
        per_anchor = F.cross_entropy(conf.transpose(1, 2), labels, reduction="none")
        negatives = hard_negative_mask(per_anchor, labels, self.config.negative_ratio,
                                       self.config.min_negatives)
        return per_anchor[(labels > 0) | negatives].sum()

    def _landmarks(self, landms: Tensor, targets: dict[str, Tensor]) -> Tensor:
        mask = targets["landmark_mask"]
        count = self.count_normaliser(mask.sum())
        return F.smooth_l1_loss(landms[mask], targets["landmarks"][mask], reduction="sum") / count

    def _pose(self, pose_logits: list[Tensor], targets: dict[str, Tensor]) -> Tensor:
        mask = targets["pose_mask"]
        count = self.count_normaliser(mask.sum())
        bins = targets["pose_bins"][mask]
        degrees = targets["pose_degrees"][mask]
        total = pose_logits[0].new_zeros(())
        for angle, logits in enumerate(pose_logits):
            chosen = logits[mask]
            cross_entropy = F.cross_entropy(chosen, bins[:, angle], reduction="sum")
            squared = (expected_angle(chosen, self.centres) - degrees[:, angle]).pow(2).sum()
            total = total + cross_entropy + self.config.pose_beta * squared
        return total / count

    def _mirror(self, pose_logits: list[Tensor], pose_mask: Tensor) -> Tensor:
        """Mirror-consistency term: smooth-L1 (degrees, summed over the three angles) between
        each pose-labelled anchor of image ``2k`` and the mirrored reading of its mirror
        anchor in image ``2k + 1``, per such anchor."""
        if pose_mask.shape[0] % 2:
            raise ValueError(f"a batch of mirror pairs has an even size, got "
                             f"{pose_mask.shape[0]}")
        angles = torch.stack([expected_angle(logits, self.centres) for logits in pose_logits],
                             dim=-1)
        first = angles[0::2]
        second = angles[1::2][:, self.mirror_order] * self.mirror_signs.to(angles.dtype)
        mask = pose_mask[0::2]
        count = self.count_normaliser(mask.sum())
        return F.smooth_l1_loss(first[mask], second[mask], reduction="sum") / count
