"""The contestants of the real-photo evaluations: our model and the teacher detectors.

Each is a ``detect(image) -> list[LabelledFace]`` in the project's conventions (boxes as the
face-mesh extent, landmarks in the RetinaFace order); a teacher's runtime (the data engine's
optional dependencies) is imported only when the teacher is opened.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from mos_ros.backends import InferenceBackend
from mos_ros.core.errors import MosError
from mos_ros.core.labels import LabelledFace
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.data.teachers import open_teacher, to_mesh_box
from mos_ros.detector import FaceDetector
from mos_ros.resources import default_model_path

#: Teachers whose consensus is the photo ground truth, and the votes a face needs.
TRUTH_TEACHERS: tuple[str, ...] = ("yuface", "centerface", "blazeface")
#: Our model's network input: as the nodes and ``mos detect`` feed it, a long side of at most
#: the detector's default (640) — larger photos are shrunk, like the teachers shrink theirs
#: (YuNet to 960, CenterFace to 1280) — but a smaller image is never enlarged (the default
#: would enlarge a 0.25-scale photo 2-5 times), so the downscaled photos really show it small
#: faces.
MOS_MAX_INPUT_SIZE = 640


class RealPhotoError(MosError, RuntimeError):
    """The real-photo evaluation cannot run: a contestant or a cache is unusable."""


DetectFn = Callable[[np.ndarray], list[LabelledFace]]


def mos_detect(backend: InferenceBackend) -> DetectFn:
    """``detect(image)`` of our model in ``backend`` at the default decode settings, each
    image at its own size up to a long side of :data:`MOS_MAX_INPUT_SIZE`."""
    native = FaceDetector(backend, settings=DecodeSettings(), input_size=None)
    shrunk = FaceDetector(backend, settings=DecodeSettings(), input_size=MOS_MAX_INPUT_SIZE)

    def detect(image: np.ndarray) -> list[LabelledFace]:
        detector = shrunk if max(image.shape[:2]) > MOS_MAX_INPUT_SIZE else native
        return [LabelledFace.from_face(f) for f in detector.detect(image)]
    return detect


def _open_mos(model_path: Path | str | None) -> DetectFn:
    """Our model file (default: the shipped one), as :func:`mos_detect` runs it."""
    return mos_detect(FaceDetector.open(model_path or default_model_path()).backend)


def _open_teacher(name: str, model_path: Path | str | None = None) -> DetectFn:
    """A teacher with its boxes converted to the mesh-extent convention; no pose."""
    try:
        teacher = open_teacher(name)
    except ImportError as exc:
        raise RealPhotoError(f"contestant {name!r} cannot run: {exc} (install the data "
                             "engine's teachers, see .ci/setup.sh)") from None

    def detect(image: np.ndarray) -> list[LabelledFace]:
        return [LabelledFace(to_mesh_box(f), None if f.landmarks is None
                             else np.asarray(f.landmarks, np.float64), score=f.score)
                for f in teacher.detect(image)]
    return detect


#: Contestant name -> opener taking the model path (used by "mos" only).
CONTESTANTS: dict[str, Callable[[Path | str | None], DetectFn]] = {
    "mos": _open_mos,
    **{name: partial(_open_teacher, name) for name in TRUTH_TEACHERS},
}


def open_contestant(name: str, model_path: Path | str | None = None) -> DetectFn:
    """The ``detect(image)`` of contestant ``name``; unknown names are refused by name."""
    if name not in CONTESTANTS:
        raise ValueError(f"unknown contestant {name!r}; known: {', '.join(CONTESTANTS)}")
    return CONTESTANTS[name](model_path)
