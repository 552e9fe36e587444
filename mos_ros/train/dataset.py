"""Training samples: images with their anchor targets, as a torch ``Dataset``.

Sample ``i`` is a pure function of ``(seed, i)``: the scene (rendered on the fly or the
``i mod n``-th image of a written set, in an order shuffled per pass) and its augmentation
(random square crop, horizontal flip, photometric changes) all draw from
``seeded_rng(seed, i)``. So the data does not depend on the number of workers, and a resumed
run that starts at sample ``iteration * batch`` sees exactly the data it would have seen.

Images leave the workers as uint8 (H, W, 3) to keep inter-process traffic small; the trainer
subtracts the mean on the device (:func:`images_to_input`).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from mos_ros.core.anchors import generate_anchors
from mos_ros.core.config import BGR_MEAN, PoseBins, PriorConfig
from mos_ros.core.image_io import read_image
from mos_ros.core.label_file import (
    LabelledImage, image_path, missing_images, read_label_file)
from mos_ros.core.labels import FaceLabels
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.scenes.photometric import PhotometricConfig, photometric
from mos_ros.scenes.sampling import seeded_rng
from mos_ros.scenes.composer import ProceduralScenes
from mos_ros.train.augment import CropConfig, flip_horizontal, random_square_crop
from mos_ros.train.targets import MatchConfig, build_targets

#: Offsets that keep the streams of scene rendering, augmentation and shuffling apart.
_RENDER_STREAM, _AUGMENT_STREAM, _SHUFFLE_STREAM = 0, 1, 2
#: Targets sent as narrow integers and widened on the device.
_NARROW = {"labels": np.int8, "pose_bins": np.uint8}


@dataclass(frozen=True)
class SampleConfig:
    """How a training sample is produced from a scene."""

    input_size: int = 640
    flip_probability: float = 0.5
    #: Samples ``2k`` and ``2k + 1`` show one augmented scene, unmirrored and mirrored, so that
    #: a loss can compare the network's readings of a face and of its mirror image
    #: (``loss.mirror_weight``); ``flip_probability`` is then unused.
    mirror_pairs: bool = False
    #: Photometric augmentation of images read from disk (rendered scenes bring their own).
    photometric_probability: float = 0.5
    crop: CropConfig = field(default_factory=CropConfig)
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    match: MatchConfig = field(default_factory=MatchConfig)


def shuffled_position(seed: int, index: int, count: int) -> int:
    """Item at ``index`` of an endless sequence that visits ``count`` items in a new order on
    every pass (the order of pass ``index // count`` is drawn from ``(seed, pass)``)."""
    epoch, position = divmod(index, count)
    return int(seeded_rng(seed * 3 + _SHUFFLE_STREAM, epoch).permutation(count)[position])


class SyntheticSource:
    """Scenes rendered on the fly: scene ``i`` comes from ``seeded_rng(seed, i)``."""

    def __init__(self, config: SyntheticConfig, seed: int):
        self.config = config
        self.seed = seed
        self._compose = ProceduralScenes(config)

    def scene(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Image and labels of scene ``index``."""
        return self._compose(seeded_rng(self.seed * 3 + _RENDER_STREAM, index))

    def item(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Scene ``index`` itself (rendered scenes have no other order)."""
        return self.scene(index)

    @property
    def needs_photometric(self) -> bool:
        """Rendered scenes are already augmented by the renderer."""
        return False


class LabelFileSource:
    """Images of a written set (synthetic or WIDER), visited in a new order on every pass."""

    def __init__(self, label_file: str | Path, seed: int):
        self.label_file = Path(label_file)
        self.items: list[LabelledImage] = read_label_file(self.label_file)
        if not self.items:
            raise ValueError(f"label file {self.label_file} lists no images")
        missing = missing_images(self.label_file, self.items)
        if missing:
            raise FileNotFoundError(f"{len(missing)} images of the label file are missing, "
                                    f"e.g. " + "; ".join(missing[:3]))
        self.seed = seed

    def __len__(self) -> int:
        """Number of images in the set."""
        return len(self.items)

    def scene(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Image and labels at position ``index`` of the endless shuffled sequence."""
        return self.item(shuffled_position(self.seed, index, len(self.items)))

    def item(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Image and labels of the ``index``-th image of the label file."""
        item = self.items[index]
        return read_image(image_path(self.label_file, item)), item.labels

    @property
    def needs_photometric(self) -> bool:
        """Images on disk get photometric augmentation when sampled."""
        return True


class FaceTrainingSet(Dataset):
    """``dataset[i]`` -> (uint8 image (S, S, 3), dict of target arrays for every anchor)."""

    def __init__(self, source: SyntheticSource | LabelFileSource, config: SampleConfig,
                 seed: int, priors: PriorConfig = PriorConfig(), pose_bins: PoseBins = PoseBins(),
                 length: int = 2 ** 62):
        self.source = source
        self.config = config
        self.seed = seed
        self.priors = priors
        self.pose_bins = pose_bins
        self.length = length
        self.anchors = generate_anchors(priors, config.input_size, config.input_size)

    def __len__(self) -> int:
        """Samples are indexed by a global counter; the length only bounds it."""
        return self.length

    def sample(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """The augmented square image and its pixel labels (before anchor matching).

        With ``mirror_pairs`` an odd sample is the mirror image of the even one before it.
        """
        if not self.config.mirror_pairs:
            image, labels = self.source.scene(index)
            return self.augment(image, labels,
                                seeded_rng(self.seed * 3 + _AUGMENT_STREAM, index))
        pair, mirrored = divmod(index, 2)
        image, labels = self.source.scene(pair)
        image, labels = self.augment(image, labels,
                                     seeded_rng(self.seed * 3 + _AUGMENT_STREAM, pair))
        return flip_horizontal(image, labels) if mirrored else (image, labels)

    def augment(self, image: np.ndarray, labels: FaceLabels, rng: np.random.Generator
                ) -> tuple[np.ndarray, FaceLabels]:
        """Crop, flip and photometric changes of one source image, drawn from ``rng``."""
        cfg = self.config
        image, labels = random_square_crop(image, labels, rng, cfg.crop, cfg.input_size)
        if rng.random() < cfg.flip_probability and not cfg.mirror_pairs:
            image, labels = flip_horizontal(image, labels)
        if self.source.needs_photometric and rng.random() < cfg.photometric_probability:
            image = photometric(image, rng, cfg.photometric)
        return image, labels

    def __getitem__(self, index: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Image and anchor targets of sample ``index``."""
        return self.with_targets(*self.sample(int(index)))

    def with_targets(self, image: np.ndarray, labels: FaceLabels
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """An input-sized image and its anchor targets, integers narrowed for transfer."""
        size = self.config.input_size
        targets = build_targets(labels, (size, size), self.anchors, self.priors,
                                self.pose_bins, self.config.match).as_dict()
        for name, dtype in _NARROW.items():
            targets[name] = targets[name].astype(dtype)
        return image, targets


class ShardedBatchSampler(Sampler):
    """Batches of global sample indices; each process takes its share of every batch.

    Global batch ``b`` holds samples ``b * batch .. (b + 1) * batch - 1`` (the global sample
    counter, so a resumed run sees the same data); process ``rank`` of ``world`` takes the
    ``rank``-th of ``world`` equal slices. :meth:`keys` says what a batch holds; the feedback
    sampler overrides it.
    """

    def __init__(self, first_batch: int, last_batch: int, batch_size: int,
                 rank: int = 0, world: int = 1):
        if not 0 <= first_batch <= last_batch:
            raise ValueError(f"invalid batch range [{first_batch}, {last_batch})")
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not divisible by {world} processes")
        self.first_batch, self.last_batch = first_batch, last_batch
        self.batch_size, self.rank, self.world = batch_size, rank, world

    def __len__(self) -> int:
        """Number of batches."""
        return self.last_batch - self.first_batch

    def __iter__(self) -> Iterator[list]:
        """This process's share of each batch, built when the loader asks for it."""
        for batch in range(self.first_batch, self.last_batch):
            yield self._share(self.keys(batch))

    def _share(self, keys: list) -> list:
        part = self.batch_size // self.world
        return keys[self.rank * part:(self.rank + 1) * part]

    def keys(self, batch: int) -> list:
        """All sample keys of global batch ``batch`` (every process computes the same)."""
        first = batch * self.batch_size
        return list(range(first, first + self.batch_size))


def collate(batch: list[tuple[np.ndarray, dict[str, np.ndarray]]]
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Stack images (B, S, S, 3) uint8 and each target array along a new batch axis."""
    images = torch.from_numpy(np.stack([image for image, _ in batch]))
    names = batch[0][1].keys()
    targets = {name: torch.from_numpy(np.stack([t[name] for _, t in batch])) for name in names}
    return images, targets


def images_to_input(images: torch.Tensor, mean: tuple[float, float, float] = BGR_MEAN
                    ) -> torch.Tensor:
    """uint8 (B, H, W, 3) BGR -> float (B, 3, H, W) minus the mean: the network input.

    The same transform as :func:`mos_ros.core.preprocess.prepare` for an image that already has
    the input size, done on the device for a whole batch.
    """
    planes = images.permute(0, 3, 1, 2).float()
    return planes - torch.tensor(mean, dtype=planes.dtype, device=planes.device).view(1, 3, 1, 1)


def targets_to_device(targets: dict[str, torch.Tensor], device: torch.device
                      ) -> dict[str, torch.Tensor]:
    """Move targets to ``device`` and widen the narrow integer ones for the loss."""
    moved = {name: t.to(device, non_blocking=True) for name, t in targets.items()}
    for name in _NARROW:
        moved[name] = moved[name].long()
    return moved
