"""The numbers that define a MOS model's input and output, in one place.

A :class:`ModelMeta` travels with every model file (checkpoint, ONNX, ncnn) so that a backend
and the post-processing need nothing else to turn raw network outputs into faces.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

#: BGR channel means subtracted from the input image; no std scaling (MOS/RetinaFace convention).
BGR_MEAN: tuple[float, float, float] = (104.0, 117.0, 123.0)

#: Names of the raw network outputs, in the order the network returns them.
OUTPUT_NAMES: tuple[str, ...] = ("loc", "conf", "landms", "yaw", "pitch", "roll")
INPUT_NAME = "input"


@dataclass(frozen=True)
class PriorConfig:
    """Anchor layout: per pyramid level a stride and the square anchor sizes in pixels.

    Anchors are ordered level -> row -> column -> size, centre-form and normalised by the
    input width/height; ``variances`` scale the box/landmark regression targets.
    """

    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)
    clip: bool = False

    @property
    def anchors_per_cell(self) -> int:
        """Anchors per feature-map cell (the same on every level)."""
        return len(self.min_sizes[0])


@dataclass(frozen=True)
class PoseBins:
    """Head-pose classification bins: angle = sum_k softmax(p)_k * (width*k) + offset degrees."""

    num_bins: int = 66
    width_deg: float = 3.0
    offset_deg: float = -99.0


@dataclass(frozen=True)
class ModelMeta:
    """What a model file must carry so that inference needs nothing else."""

    variant: str = "mos-s"
    input_mean: tuple[float, float, float] = BGR_MEAN
    color_order: str = "BGR"
    priors: PriorConfig = field(default_factory=PriorConfig)
    pose_bins: PoseBins = field(default_factory=PoseBins)
    #: Free-form provenance (training set, date, model card name); not used by inference.
    description: str = ""

    def to_json(self) -> str:
        """Serialise to a JSON string (stored in ONNX metadata, ncnn sidecars, checkpoints)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        """Rebuild from :meth:`to_json`'s dict; unknown keys are an error, missing use defaults."""
        known = {"variant", "input_mean", "color_order", "priors", "pose_bins", "description"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model metadata has unknown keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = dict(data)
        if "input_mean" in kwargs:
            kwargs["input_mean"] = tuple(float(v) for v in kwargs["input_mean"])
        if "priors" in kwargs:
            p = kwargs["priors"]
            kwargs["priors"] = PriorConfig(
                min_sizes=tuple(tuple(int(s) for s in level) for level in p["min_sizes"]),
                steps=tuple(int(s) for s in p["steps"]),
                variances=tuple(float(v) for v in p["variances"]),
                clip=bool(p.get("clip", False)),
            )
        if "pose_bins" in kwargs:
            kwargs["pose_bins"] = PoseBins(**kwargs["pose_bins"])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        """Parse :meth:`to_json` output; raises ``ValueError`` naming what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"model metadata is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("model metadata must be a JSON object")
        return cls.from_dict(data)
