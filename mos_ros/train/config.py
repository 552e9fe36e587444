"""The description of a training run (``config/train_synth.yaml``) and how it is read."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mos_ros.core.settings import build_dataclass, load_yaml_mapping
from mos_ros.core.validation import Rule, Validated
from mos_ros.scenes.config import SyntheticConfig
from mos_ros.train.dataset import SampleConfig
from mos_ros.train.feedback import FEEDBACK_FIELDS, FeedbackConfig
from mos_ros.train.headpose_data import HeadPoseLabelConfig
from mos_ros.train.loss import LossConfig
from mos_ros.train.optimizers import OPTIMIZERS
from mos_ros.train.uncertainty import SCALE_NAMES, TASKS

#: Columns of the metrics CSV that every run writes.
METRIC_FIELDS = ("iteration", "lr", "total", "cls", "box", "landmarks", "pose",
                 "seconds_per_iteration", "images_per_second")
_POSITIVE = ("input_size", "batch_size", "iterations", "checkpoint_every", "log_every")


@dataclass(frozen=True)
class TrainConfig(Validated):
    """Everything a training run depends on (see ``config/train_synth.yaml``).

    ``lr_steps`` are fractions of ``iterations`` at which the learning rate is multiplied by
    ``lr_gamma``; warm-up ramps linearly from ``warmup_factor * lr``. ``prerender`` > 0 renders
    that many scenes to disk first (with ``workers`` processes) and trains from them;
    0 renders on the fly in the loader workers. ``train_label_file`` trains from a written set
    instead. ``max_minutes`` > 0 ends the run early (final model still written); it bounds the
    training time of the whole run, resumed processes included (state files carry it).
    ``headpose_sets`` (folders or list files of 300W-LP / AFLW2000 ``.mat`` + image pairs)
    replace ``headpose_fraction`` of the samples by head-pose images.
    """

    variant: str = "mos-s"
    input_size: int = 640
    batch_size: int = 32
    iterations: int = 10000
    lr: float = 0.01
    #: ``sgd`` (with ``momentum``) or ``adamw`` (:mod:`mos_ros.train.optimizers`).
    optimizer: str = "sgd"
    warmup_iterations: int = 500
    warmup_factor: float = 0.01
    lr_steps: tuple[float, ...] = (0.7, 0.9)
    lr_gamma: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    grad_clip_norm: float = 0.0
    workers: int = 4
    torch_threads: int = 0
    seed: int = 0
    output_dir: str = "out/train_synth"
    backbone_weights: str | None = None
    #: A mos_ros checkpoint (.pt) of the same variant whose weights start the run
    #: (fine-tuning; the optimizer and schedule start afresh). Applied after backbone_weights.
    init_weights: str | None = None
    #: Parameter-name prefixes that keep their (pre-trained) values, e.g. ``body.features.0``;
    #: their batch norms keep the pre-trained statistics too.
    frozen_layers: tuple[str, ...] = ()
    #: The other way round: only modules under these names learn, every other one is frozen
    #: as ``frozen_layers`` would freeze it (e.g. ``[ClassHead]`` recalibrates the face score
    #: and leaves boxes, landmarks and pose bit-identical). Empty: ``frozen_layers`` decides.
    trainable_layers: tuple[str, ...] = ()
    checkpoint_every: int = 1000
    #: The final model is the mean of the weights of the last ``average_states`` state files
    #: (stochastic weight averaging, :mod:`mos_ros.train.averaging`), its batch-norm statistics
    #: measured again over ``average_bn_batches`` training batches; 0: the last weights.
    average_states: int = 0
    average_bn_batches: int = 100
    log_every: int = 20
    amp: bool = True
    device: str = "auto"
    max_minutes: float = 0.0
    prerender: int = 0
    train_label_file: str | None = None
    validation_images: int = 50
    validation_seed: int = 1_000_003
    description: str = ("MOS trained on the mos_ros synthetic face set (canonical-mesh renders); "
                        "not trained on real faces")
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    headpose_sets: tuple[str, ...] = ()
    headpose_fraction: float = 0.25
    headpose_labels: HeadPoseLabelConfig = field(default_factory=HeadPoseLabelConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)

    def rules(self) -> list[Rule]:
        """Settings that cannot train, each named by its field."""
        return [*((name, getattr(self, name) >= 1, ">= 1") for name in _POSITIVE),
                ("lr", self.lr > 0, "> 0"),
                ("optimizer", self.optimizer in OPTIMIZERS,
                 f"one of {sorted(OPTIMIZERS)}"),
                ("lr_steps", all(0 < s <= 1 for s in self.lr_steps), "fractions in (0, 1]"),
                ("sample", self.sample.input_size == self.input_size,
                 f"at input_size {self.input_size} (set only input_size)"),
                ("headpose_fraction", 0.0 <= self.headpose_fraction <= 1.0, "in [0, 1]"),
                ("average_states", self.average_states >= 0, ">= 0"),
                ("average_bn_batches", self.average_bn_batches >= 1, ">= 1"),
                ("trainable_layers", not (self.trainable_layers and self.frozen_layers),
                 "empty when frozen_layers is set (one of the two decides)"),
                *self._mirror_rules()]

    def _mirror_rules(self) -> list[Rule]:
        """A mirror-consistency loss needs mirror pairs, whole pairs in a batch, and the
        plain sampler (hard mining and stitching draw single images)."""
        pairs = self.sample.mirror_pairs
        return [("loss", self.loss.mirror_weight == 0 or pairs,
                 "without mirror_weight unless sample.mirror_pairs is true"),
                ("batch_size", not pairs or self.batch_size % 2 == 0,
                 "even with sample.mirror_pairs"),
                ("feedback", not pairs or not self.feedback.enabled,
                 "off with sample.mirror_pairs (its samplers draw single images)")]

    @property
    def metric_fields(self) -> tuple[str, ...]:
        """Columns of the metrics CSV: the base ones plus those of the enabled options."""
        fields = METRIC_FIELDS
        if self.loss.weighting == "uncertainty":
            fields += tuple(f"weight_{task}" for task in TASKS) + SCALE_NAMES
        if self.feedback.enabled:
            fields += FEEDBACK_FIELDS
        if self.loss.mirror_weight > 0:
            fields += ("mirror",)
        return fields

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from nested plain data (YAML); unknown keys are an error naming them."""
        data = dict(data)
        sample = dict(data.pop("sample", {}) or {})
        sample.setdefault("input_size", data.get("input_size", cls.input_size))
        data["sample"] = sample
        return build_dataclass(cls, data, "train config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a YAML file (see ``config/train_synth.yaml``)."""
        return cls.from_dict(load_yaml_mapping(path, "training config"))
