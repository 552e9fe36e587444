"""Online feedback sampling (MOS paper, section 3.3): stitched batches and a hard-image set.

Two mechanisms, each switched on in the ``feedback`` section of the training config:

* **Stitching** (``stitch``). After every iteration the box loss of the positive anchors
  whose face is no larger than ``small_face_px`` x ``small_face_px`` (by area) is compared to
  the whole box loss. When that share is below ``stitch_threshold`` (T = 0.35 in the paper)
  small faces are under-represented, and the next batch is made of stitched images: 2 x 2
  mosaics of four samples, each shrunk to half the side (:func:`mosaic`), which turns every
  face into a face of half the size. :class:`StitchSwitch` holds the decision; the batch
  sampler reads it when it builds the next batch. With loader workers the next batch built is
  ``workers x prefetch`` batches after the one being trained, so the decision takes effect
  that many iterations later; with ``workers: 0`` it is exactly the next batch.
* **Hard images** (``hard_mining``). The sampling set S starts as every training image. After
  each epoch the model is run over the training images (:func:`count_errors` with core's
  :func:`~mos_ros.core.postprocess.decode_faces` and :func:`~mos_ros.core.nms.iou_matrix`);
  an image with false positives or missed faces enters S once more per error (up to
  ``max_extra_copies``), so it is drawn that many times more often in the next epoch
  (:class:`HardSet`). With this switched on, samples are drawn from S (with replacement)
  instead of the shuffled sequence. Rendered (synthetic) training uses the scenes
  ``0 .. synthetic_pool - 1`` as its training images.

Both decisions live in the main process (the batch sampler hands :class:`SampleKey` objects to
the loader workers), are identical on every data-parallel process (statistics are summed over
processes), and are saved with the training state. Logged per log step: ``small_box_ratio``,
``stitched_fraction`` (of the batches since the previous log), ``hard_set_size`` (|S| counted
with repeats) and ``hard_images``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mos_ros.core.codec import decode_boxes
from mos_ros.core.labels import FaceLabels
from mos_ros.core.nms import iou_matrix
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.core.types import Face
from mos_ros.core.validation import Rule, Validated
from mos_ros.evaluate.metrics import matched_truth
from mos_ros.scenes.sampling import seeded_rng
from mos_ros.train.augment import scale_labels
from mos_ros.train.dataset import FaceTrainingSet, ShardedBatchSampler
from mos_ros.train.validate import detect

LOG = logging.getLogger(__name__)

#: Tiles of a stitched image: 2 x 2, row-major (top-left, top-right, bottom-left, bottom-right).
MOSAIC_TILES = 4
#: Tags that keep the random streams of mosaic tiles, hard-set draws and the augmentation of
#: drawn images apart from each other and from the dataset's streams.
_TILE_TAG, _DRAW_TAG, _ITEM_TAG = 5_101, 5_102, 5_103
FEEDBACK_FIELDS = ("small_box_ratio", "stitched_fraction", "hard_set_size", "hard_images")


@dataclass(frozen=True)
class FeedbackConfig(Validated):
    """Switches and thresholds of online feedback sampling."""

    #: Stitch the next batch when the small-face share of the box loss is below the threshold.
    stitch: bool = False
    stitch_threshold: float = 0.35
    #: Faces with area <= this squared (pixels of the network input) count as small.
    small_face_px: float = 25.0
    #: Rebuild the hard-image set S after every epoch and sample from it.
    hard_mining: bool = False
    #: Iterations per epoch; 0: one pass over the training images (images / batch size).
    epoch_iterations: int = 0
    #: Training images examined per epoch (a random subset); 0: all of them.
    mine_images: int = 0
    #: Scenes that stand for the training images when training on rendered scenes.
    synthetic_pool: int = 2000
    #: A detection matches a face at this IoU; smaller faces are neither missed nor false.
    match_iou: float = 0.5
    score_threshold: float = 0.5
    ignore_below_px: float = 10.0
    max_extra_copies: int = 4

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [
            ("stitch_threshold", 0.0 <= self.stitch_threshold <= 1.0, "in [0, 1]"),
            ("small_face_px", self.small_face_px > 0, "> 0"),
            ("epoch_iterations", self.epoch_iterations >= 0, ">= 0"),
            ("mine_images", self.mine_images >= 0, ">= 0"),
            ("synthetic_pool", self.synthetic_pool >= 1, ">= 1"),
            ("match_iou", 0.0 < self.match_iou <= 1.0, "in (0, 1]"),
            ("score_threshold", 0.0 <= self.score_threshold <= 1.0, "in [0, 1]"),
            ("ignore_below_px", self.ignore_below_px >= 0, ">= 0"),
            ("max_extra_copies", self.max_extra_copies >= 1, ">= 1"),
        ]

    @property
    def enabled(self) -> bool:
        """Whether either mechanism is on."""
        return self.stitch or self.hard_mining


@dataclass(frozen=True)
class SampleKey:
    """What one training sample is made of, decided in the main process.

    ``index`` is the global sample counter (it seeds the augmentation). ``items`` are images of
    the source to use (hard-set draws); empty means the source's shuffled sequence. A stitched
    sample uses four images: ``items`` when given, else sequence positions ``4 * index + j``.
    """

    index: int
    items: tuple[int, ...] = ()
    stitched: bool = False


# --------------------------------------------------------------------------------------------
# Stitching


def mosaic(tiles: list[tuple[np.ndarray, FaceLabels]], min_face_px: float = 0.0
           ) -> tuple[np.ndarray, FaceLabels]:
    """Four square S x S samples shrunk to S/2 and laid out 2 x 2 in one S x S image.

    Tile ``j`` lands at column ``j % 2``, row ``j // 2``: its boxes and landmarks are halved
    and shifted by the tile's corner. Faces smaller than ``min_face_px`` afterwards are dropped.
    """
    if len(tiles) != MOSAIC_TILES:
        raise ValueError(f"a mosaic needs {MOSAIC_TILES} tiles, got {len(tiles)}")
    size = tiles[0][0].shape[0]
    if size % 2 or any(image.shape[:2] != (size, size) for image, _ in tiles):
        raise ValueError("mosaic tiles must be square, of one even size")
    half = size // 2
    canvas = np.empty((size, size, 3), np.uint8)
    placed = []
    for j, (image, labels) in enumerate(tiles):
        x0, y0 = (j % 2) * half, (j // 2) * half
        canvas[y0:y0 + half, x0:x0 + half] = cv2.resize(image, (half, half),
                                                        interpolation=cv2.INTER_AREA)
        placed.append(_shift(scale_labels(labels, 0.5), x0, y0))
    merged = _concatenate(placed)
    sides = np.minimum(merged.boxes[:, 2] - merged.boxes[:, 0],
                       merged.boxes[:, 3] - merged.boxes[:, 1])
    return canvas, merged.select(sides >= min_face_px)


def _shift(labels: FaceLabels, x0: float, y0: float) -> FaceLabels:
    return FaceLabels(labels.boxes + np.float32([x0, y0, x0, y0]),
                      labels.landmarks + np.float32([x0, y0]), labels.poses,
                      labels.has_landmarks, labels.has_pose)


def _concatenate(parts: list[FaceLabels]) -> FaceLabels:
    return FaceLabels(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                        ("boxes", "landmarks", "poses", "has_landmarks", "has_pose")))


def small_face_box_loss(loc: torch.Tensor, targets: dict[str, torch.Tensor],
                        anchors: np.ndarray, variances, input_size: int,
                        small_face_px: float) -> torch.Tensor:
    """(box loss of small faces, box loss of all faces), summed over positive anchors.

    The face of a positive anchor is its box target decoded with core's codec; it is small when
    its area in network-input pixels is at most ``small_face_px ** 2``.
    """
    positive = targets["labels"] > 0
    per_anchor = F.smooth_l1_loss(loc.detach().float()[positive], targets["loc"][positive],
                                  reduction="none").sum(dim=1).cpu().double()
    anchor_index = positive.nonzero()[:, 1].cpu().numpy()
    boxes = decode_boxes(targets["loc"][positive].cpu().numpy(), anchors[anchor_index],
                         variances) * input_size
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    small = torch.from_numpy(areas <= small_face_px ** 2)
    return torch.stack([per_anchor[small].sum(), per_anchor.sum()])


class StitchSwitch:
    """Decides after each iteration whether the next batch is stitched."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.stitch_next = False
        self.ratio = float("nan")
        self._batches = 0
        self._stitched = 0

    def update(self, small_loss: float, box_loss: float) -> bool:
        """Record one iteration's box losses; returns the decision for the next batch.

        A batch without positive anchors (no box loss) gives no evidence: no stitching.
        """
        self.ratio = small_loss / box_loss if box_loss > 0 else float("nan")
        self.stitch_next = bool(box_loss > 0 and self.ratio < self.threshold)
        return self.stitch_next

    def note_batch(self, stitched: bool) -> None:
        """Count a batch handed to the loader."""
        self._batches += 1
        self._stitched += int(stitched)

    def stitched_fraction(self) -> float:
        """Fraction of batches stitched since the previous call."""
        fraction = self._stitched / self._batches if self._batches else 0.0
        self._batches = self._stitched = 0
        return fraction


# --------------------------------------------------------------------------------------------
# Hard images


def count_errors(faces: list[Face], truth: FaceLabels, match_iou: float = 0.5,
                 ignore_below_px: float = 0.0) -> int:
    """False positives plus missed faces of one image.

    Detections are matched greedily, best score first, to the unmatched face they overlap most
    (IoU >= ``match_iou``). Faces smaller than ``ignore_below_px`` (shorter side) are ignored:
    missing them is no error and a detection on them is no false positive.
    """
    boxes = np.array([face.box for face in faces], np.float64).reshape(-1, 4)
    sides = np.minimum(truth.boxes[:, 2] - truth.boxes[:, 0],
                       truth.boxes[:, 3] - truth.boxes[:, 1])
    counted = sides >= ignore_below_px
    found = matched_truth(truth.boxes, boxes, [face.score for face in faces], match_iou)
    matched = np.zeros(len(truth), bool)
    matched[found[found >= 0]] = True
    overlap = iou_matrix(boxes, truth.boxes.astype(np.float64))
    on_ignored = (overlap[:, ~counted] >= match_iou).any(axis=1)
    false_positives = int(np.sum((found < 0) & ~on_ignored))
    return false_positives + int(np.sum(counted & ~matched))


class HardSet:
    """The sampling set S over ``count`` training images, as a copy count per image."""

    def __init__(self, count: int, max_extra_copies: int):
        self.copies = np.ones(count, np.int64)
        self.max_extra_copies = max_extra_copies

    def update(self, errors: np.ndarray) -> None:
        """S = every image once, plus each image with errors once per error (capped)."""
        self.copies = 1 + np.minimum(np.asarray(errors, np.int64), self.max_extra_copies)

    @property
    def size(self) -> int:
        """|S| counted with repeats."""
        return int(self.copies.sum())

    @property
    def hard_images(self) -> int:
        """Images in S more than once."""
        return int(np.sum(self.copies > 1))

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` image indices drawn from S with replacement."""
        return rng.choice(len(self.copies), size=count, p=self.copies / self.copies.sum())

    def state_dict(self) -> dict[str, Any]:
        """Copy counts, for the training state file (a tensor: state files load with
        ``weights_only=True``)."""
        return {"copies": torch.from_numpy(np.asarray(self.copies, np.int64).copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore copy counts saved by :meth:`state_dict`."""
        copies = state["copies"]
        self.copies = np.asarray(copies.numpy() if isinstance(copies, torch.Tensor) else copies,
                                 np.int64)


@torch.no_grad()
def mine_errors(model: torch.nn.Module, source, images: np.ndarray, input_size: int,
                device: torch.device, config: FeedbackConfig) -> np.ndarray:
    """Errors (false positives + misses) of the model on source images ``images``."""
    settings = DecodeSettings(score_threshold=config.score_threshold)
    was_training = model.training
    model.eval()
    try:
        errors = []
        for index in images:
            image, labels = source.item(int(index))
            faces = detect(model, image, input_size, device, settings)
            errors.append(count_errors(faces, labels, config.match_iou, config.ignore_below_px))
    finally:
        model.train(was_training)
    return np.array(errors, np.int64)


# --------------------------------------------------------------------------------------------
# Sampling and samples


class FeedbackBatchSampler(ShardedBatchSampler):
    """The sharded batch sampler whose keys carry the feedback decisions.

    Stitching follows the switch's state when the batch is built; hard-set draws come from
    ``(seed, b)``.
    """

    def __init__(self, first_batch: int, last_batch: int, batch_size: int, seed: int,
                 switch: StitchSwitch | None, hard_set: HardSet | None,
                 rank: int = 0, world: int = 1):
        super().__init__(first_batch, last_batch, batch_size, rank, world)
        self.seed, self.switch, self.hard_set = seed, switch, hard_set

    def keys(self, batch: int) -> list[SampleKey]:
        """All keys of global batch ``batch`` (every process computes the same)."""
        stitched = bool(self.switch and self.switch.stitch_next)
        if self.switch:
            self.switch.note_batch(stitched)
        per_sample = MOSAIC_TILES if stitched else 1
        first = batch * self.batch_size
        items = [()] * self.batch_size
        if self.hard_set is not None:
            rng = seeded_rng(self.seed, batch, _DRAW_TAG)
            drawn = self.hard_set.draw(rng, self.batch_size * per_sample).tolist()
            items = [tuple(drawn[k * per_sample:(k + 1) * per_sample])
                     for k in range(self.batch_size)]
        return [SampleKey(first + k, items[k], stitched) for k in range(self.batch_size)]


class FeedbackTrainingSet(FaceTrainingSet):
    """:class:`FaceTrainingSet` that also takes :class:`SampleKey` (hard draws, mosaics)."""

    def __getitem__(self, key) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Image and anchor targets of a key (or of a plain global index)."""
        if not isinstance(key, SampleKey):
            return super().__getitem__(key)
        return self.with_targets(*self.sample_key(key))

    def sample_key(self, key: SampleKey) -> tuple[np.ndarray, FaceLabels]:
        """The augmented image and pixel labels a key describes."""
        if key.stitched:
            tiles = [self._tile(key, j) for j in range(MOSAIC_TILES)]
            return mosaic(tiles, self.config.crop.min_face_px)
        if key.items:
            image, labels = self.source.item(key.items[0])
            return self.augment(image, labels, seeded_rng(self.seed, key.index, _ITEM_TAG))
        return self.sample(key.index)

    def _tile(self, key: SampleKey, tile: int) -> tuple[np.ndarray, FaceLabels]:
        if key.items:
            image, labels = self.source.item(key.items[tile])
        else:
            image, labels = self.source.scene(MOSAIC_TILES * key.index + tile)
        return self.augment(image, labels, seeded_rng(self.seed, key.index, tile, _TILE_TAG))


def _pool_size(source, config: FeedbackConfig) -> int:
    try:
        return len(source)
    except TypeError:  # rendered scenes: an endless sequence
        return config.synthetic_pool


class FeedbackLoop:
    """The trainer's side of online feedback: decisions, epoch mining, state and statistics."""

    def __init__(self, config: FeedbackConfig, dataset: FaceTrainingSet, batch_size: int,
                 seed: int):
        self.config = config
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.pool = _pool_size(dataset.source, config)
        self.switch = StitchSwitch(config.stitch_threshold) if config.stitch else None
        self.hard_set = HardSet(self.pool, config.max_extra_copies) if config.hard_mining \
            else None

    @property
    def epoch_iterations(self) -> int:
        """Iterations between two minings of hard images."""
        return self.config.epoch_iterations or max(1, -(-self.pool // self.batch_size))

    def batch_sampler(self, first_batch: int, last_batch: int, rank: int = 0,
                      world: int = 1) -> FeedbackBatchSampler:
        """The loader's batch sampler, consulting this loop's decisions."""
        return FeedbackBatchSampler(first_batch, last_batch, self.batch_size, self.seed,
                                    self.switch, self.hard_set, rank, world)

    def after_step(self, loc: torch.Tensor, targets: dict[str, torch.Tensor],
                   reduce_sum) -> None:
        """Decide whether the next batch is stitched (``reduce_sum`` sums over processes)."""
        if self.switch is None:
            return
        meta_priors = self.dataset.priors
        losses = small_face_box_loss(loc, targets, self.dataset.anchors, meta_priors.variances,
                                     self.dataset.config.input_size, self.config.small_face_px)
        small, total = reduce_sum(losses).tolist()
        self.switch.update(small, total)

    def epoch_due(self, iteration: int) -> bool:
        """Whether ``iteration`` ends an epoch at which hard images are mined."""
        return self.hard_set is not None and iteration % self.epoch_iterations == 0

    def after_epoch(self, model: torch.nn.Module, device: torch.device, epoch: int,
                    rank: int, world: int, reduce_sum) -> None:
        """Run the model over (a share of) the training images and rebuild S from its errors."""
        images = np.arange(self.pool)
        if self.config.mine_images and self.config.mine_images < self.pool:
            images = np.sort(seeded_rng(self.seed, epoch, _DRAW_TAG).choice(
                self.pool, self.config.mine_images, replace=False))
        mine = images[rank::world]
        errors = torch.zeros(self.pool, dtype=torch.float64)
        errors[torch.from_numpy(mine)] = torch.from_numpy(
            mine_errors(model, self.dataset.source, mine, self.dataset.config.input_size,
                        device, self.config)).double()
        self.hard_set.update(reduce_sum(errors).round().long().numpy())
        LOG.info("epoch %d: %d of %d examined images have errors; |S| = %d", epoch,
                 self.hard_set.hard_images, len(images), self.hard_set.size)

    def log_values(self) -> dict[str, float]:
        """Statistics since the previous log (keys: :data:`FEEDBACK_FIELDS`)."""
        switch, hard = self.switch, self.hard_set
        return {"small_box_ratio": switch.ratio if switch else float("nan"),
                "stitched_fraction": switch.stitched_fraction() if switch else 0.0,
                "hard_set_size": hard.size if hard else self.pool,
                "hard_images": hard.hard_images if hard else 0}

    def state_dict(self) -> dict[str, Any]:
        """Decision state for the training state file."""
        return {"stitch_next": bool(self.switch and self.switch.stitch_next),
                "hard_set": self.hard_set.state_dict() if self.hard_set else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        if self.switch is not None:
            self.switch.stitch_next = bool(state.get("stitch_next", False))
        if self.hard_set is not None and state.get("hard_set"):
            self.hard_set.load_state_dict(state["hard_set"])
