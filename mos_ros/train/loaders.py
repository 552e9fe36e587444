"""Where a run's samples come from and how they reach the loop: sources, datasets, loaders."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import torch
from torch.utils.data import DataLoader

from mos_ros.core.label_file import LABEL_FILE
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.scenes.composer import write_synthetic_set
from mos_ros.train.config import TrainConfig
from mos_ros.train.dataset import (
    FaceTrainingSet, LabelFileSource, ShardedBatchSampler, SyntheticSource, collate)
from mos_ros.train.distributed import DistributedContext
from mos_ros.train.feedback import FeedbackLoop, FeedbackTrainingSet
from mos_ros.train.headpose_data import HeadPoseSource, MixedSource

PRERENDER_DIR = "synthetic_train"


def _worker_init(_: int) -> None:
    # Each loader worker is one process; OpenCV and torch threads would oversubscribe cores.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _detection_source(config: TrainConfig, output_dir: Path, context: DistributedContext):
    if config.train_label_file:
        return LabelFileSource(config.train_label_file, config.seed)
    if config.prerender > 0:
        folder = output_dir / PRERENDER_DIR
        label_file = folder / LABEL_FILE
        if not label_file.is_file() and context.is_main:
            write_synthetic_set(folder, config.prerender, config.seed * 3,
                                config.synthetic, workers=max(1, config.workers))
        context.barrier()
        return LabelFileSource(label_file, config.seed)
    return SyntheticSource(config.synthetic, config.seed)


def training_source(config: TrainConfig, output_dir: Path,
                    context: DistributedContext = DistributedContext()):
    """The run's images and labels: rendered, pre-rendered or a label file, with the
    head-pose sets mixed in where configured."""
    source = _detection_source(config, output_dir, context)
    if not config.headpose_sets:
        return source
    headpose = HeadPoseSource(config.headpose_sets, config.seed, config.headpose_labels)
    return MixedSource(source, headpose, config.headpose_fraction, config.seed)


def training_set(config: TrainConfig, output_dir: Path, context: DistributedContext,
                 meta) -> FaceTrainingSet:
    """The dataset of a run (the feedback kind where feedback is on); ``meta`` the model's."""
    kind = FeedbackTrainingSet if config.feedback.enabled else FaceTrainingSet
    return kind(training_source(config, output_dir, context), config.sample, config.seed,
                meta.priors, meta.pose_bins)


def make_loader(config: TrainConfig, dataset: FaceTrainingSet, start: int,
                device: torch.device, context: DistributedContext,
                feedback: FeedbackLoop | None = None) -> DataLoader:
    """Batches ``start`` .. ``config.iterations`` (this process's share of each)."""
    if feedback is not None:
        sampler = feedback.batch_sampler(start, config.iterations, context.rank,
                                         context.world_size)
    else:
        sampler = ShardedBatchSampler(start, config.iterations, config.batch_size,
                                      context.rank, context.world_size)
    # Spawned, not forked: a fork inherits OpenCV's and OpenMP's thread pools half-locked
    # (workers then hang in cv2.setNumThreads) and must never inherit a CUDA context.
    # A shallow prefetch keeps a feedback decision close to the batch it was made for.
    extra = ({"prefetch_factor": 1 if feedback else 4, "multiprocessing_context": "spawn"}
             if config.workers else {})
    return DataLoader(dataset, batch_sampler=sampler, num_workers=config.workers,
                      collate_fn=collate, pin_memory=device.type == "cuda",
                      worker_init_fn=_worker_init, **extra)


def validation_config(config: TrainConfig) -> SyntheticConfig:
    """Held-out scenes at the network input size, faces scaled like the training scenes."""
    ratio = config.input_size / max(config.synthetic.width, config.synthetic.height)
    low, high = config.synthetic.face_px_range
    return dataclasses.replace(config.synthetic, width=config.input_size,
                               height=config.input_size,
                               face_px_range=(max(low * ratio, low / 2), high * ratio))
