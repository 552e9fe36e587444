"""FaceDetector: a BGR image in, faces with landmarks and head pose out, on any backend."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mos_ros.backends import InferenceBackend, open_backend
from mos_ros.core.errors import ModelFileError
from mos_ros.core.image_io import to_bgr
from mos_ros.core.postprocess import DecodeSettings, decode_faces
from mos_ros.core.preprocess import InputSize, prepare
from mos_ros.core.types import Face, RawOutputs

#: Which backend reads a model file, by its suffix (an ncnn model is a ``*.ncnn`` folder).
BACKEND_BY_SUFFIX = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".ncnn": "ncnn"}
#: Default network input: the image's long side is scaled to this many pixels.
DEFAULT_INPUT_SIZE = 640


def backend_for_path(model_path: str | Path) -> str:
    """Name of the backend that reads ``model_path``, chosen by its suffix."""
    suffix = Path(model_path).suffix.lower()
    try:
        return BACKEND_BY_SUFFIX[suffix]
    except KeyError:
        known = ", ".join(sorted(BACKEND_BY_SUFFIX))
        raise ModelFileError(f"{model_path}: cannot tell the model format from its suffix "
                             f"'{suffix}' (known: {known}); name the backend explicitly") from None


@dataclass(frozen=True)
class StageTimes:
    """Wall-clock milliseconds of each stage of one detection."""

    preprocess_ms: float
    network_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        """Sum of the three stages."""
        return self.preprocess_ms + self.network_ms + self.postprocess_ms


class FaceDetector:
    """Detect faces, five landmarks and head pose in BGR images with one network pass.

    Pre- and post-processing come from :mod:`mos_ros.core`; only ``backend.infer`` differs
    between torch, onnxruntime and ncnn. ``settings`` may be replaced at run time.
    """

    def __init__(self, backend: InferenceBackend, settings: DecodeSettings = DecodeSettings(),
                 input_size: InputSize = DEFAULT_INPUT_SIZE) -> None:
        self.backend = backend
        self.settings = settings
        self.input_size = input_size

    @classmethod
    def open(cls, model_path: str | Path, backend: str | None = None,
             backend_options: dict[str, Any] | None = None, **kwargs: Any) -> FaceDetector:
        """Load ``model_path`` with ``backend`` (default: chosen by the file's suffix)."""
        name = backend or backend_for_path(model_path)
        return cls(open_backend(name, model_path, **(backend_options or {})), **kwargs)

    @property
    def meta(self):
        """The model's :class:`~mos_ros.core.config.ModelMeta`."""
        return self.backend.meta

    def update_settings(self, **changes: Any) -> DecodeSettings:
        """Replace some thresholds; raises ``ValueError`` (and changes nothing) if invalid."""
        self.settings = replace(self.settings, **changes)
        return self.settings

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image`` (BGR uint8; grayscale and BGRA accepted), best score first."""
        return self.detect_timed(image)[0]

    def detect_timed(self, image: np.ndarray) -> tuple[list[Face], StageTimes]:
        """:meth:`detect` plus the time spent in each stage."""
        start = time.perf_counter()
        batch, letterbox = prepare(to_bgr(image), self.input_size, self.meta.input_mean)
        prepared = time.perf_counter()
        raw: RawOutputs = self.backend.infer(batch)
        inferred = time.perf_counter()
        faces = decode_faces(raw, self.meta, letterbox, self.settings)
        done = time.perf_counter()
        times = StageTimes((prepared - start) * 1e3, (inferred - prepared) * 1e3,
                           (done - inferred) * 1e3)
        return faces, times
