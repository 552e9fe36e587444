"""Head-pose sets in the 300W-LP / AFLW2000 layout: one ``.mat`` file beside each image.

Each ``<name>.mat`` (read with :func:`scipy.io.loadmat`) beside ``<name>.jpg`` holds:

* ``Pose_Para`` (1, 7): pitch, yaw, roll in radians, then translation (3) and scale, the pose
  of the fitted 3D face model (3DDFA);
* ``pt2d`` (2, 68): image x/y of the 68 iBUG landmarks (300W-LP; AFLW2000's ``pt2d`` has only
  21 AFLW points and is not used), or ``pt3d_68`` (3, 68): x/y/z of the same 68 landmarks
  (AFLW2000), of which x/y are image pixels.

Angles. The fitting code builds the rotation as ``R = R_x(pitch) R_y(yaw) R_z(roll)`` with the
passive matrices of 3DDFA's ``RotationMatrix.m`` in a model frame with y up and z towards the
camera, and projects with the image y axis flipped. Expressed in the camera optical frame this
is exactly :func:`mos_ros.core.pose.euler_to_matrix` of the same three numbers, so the mapping
to the project's convention is the identity in sign: ``yaw = Pose_Para[1]``, ``pitch =
Pose_Para[0]``, ``roll = Pose_Para[2]``, converted to degrees (Hopenet reads them the same way).
The test suite checks this rotation identity numerically (:data:`POSE_PARA_INDEX`).
Faces with an angle beyond ``max_abs_angle_deg`` (99 degrees: the range of the pose bins, and
the AFLW2000 protocol of Hopenet) keep their box and landmarks but have no pose label.

Labels derived from the 68 points: the box is their bounding rectangle (grown by ``box_margin``
of its size on each side), the five landmarks are the eye centres (mean of the contours
36-41 and 42-47), the nose tip (30) and the mouth corners (48, 54), the subject's right side
first, which is the image-left side for any face that shows both eyes (|yaw| < 90 degrees):
the order of :mod:`mos_ros.core.label_file`.

A set is a folder (searched recursively for ``.mat`` files that have an image beside them;
landmark-only ``.mat`` files such as 300W-LP's ``landmarks/`` are skipped) or a text file
listing one path per line (relative to the list's folder, with or without extension), as in
Hopenet's file lists. Training mixes these images into the detection set with
:class:`MixedSource` (``headpose_sets`` and ``headpose_fraction`` in the training config).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from mos_ros.core.image_io import read_image
from mos_ros.core.labels import FaceLabels
from mos_ros.core.validation import Rule, Validated
from mos_ros.train.dataset import shuffled_position

LOG = logging.getLogger(__name__)

POSE_KEY = "Pose_Para"
#: Position of yaw, pitch, roll in ``Pose_Para`` (radians there, same signs as core.pose).
POSE_PARA_INDEX = (1, 0, 2)
#: Landmark arrays in the order they are looked for, with the rows that hold image x/y.
LANDMARK_KEYS = ("pt3d_68", "pt2d")
NUM_POINTS = 68
#: 0-based iBUG-68 indices of the five training landmarks' sources.
RIGHT_EYE, LEFT_EYE = tuple(range(36, 42)), tuple(range(42, 48))
NOSE_TIP, MOUTH_RIGHT, MOUTH_LEFT = 30, 48, 54
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Tag that keeps the mixing draws apart from every other random stream.
_MIX_TAG = 7_301


@dataclass(frozen=True)
class HeadPoseLabelConfig(Validated):
    """How labels are derived from a ``.mat`` file."""

    #: Angles (degrees) beyond which a face has no pose label.
    max_abs_angle_deg: float = 99.0
    #: Growth of the landmark rectangle on each side, as a fraction of its width / height.
    box_margin: float = 0.0

    def rules(self) -> list[Rule]:
        """The angle limit is positive, the box margin non-negative."""
        return [("max_abs_angle_deg", self.max_abs_angle_deg > 0, "> 0"),
                ("box_margin", self.box_margin >= 0, ">= 0")]


def pose_from_pose_para(pose_para: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees in the :mod:`mos_ros.core.pose` convention."""
    values = np.asarray(pose_para, np.float64).reshape(-1)
    return np.degrees(values[list(POSE_PARA_INDEX)]).astype(np.float32)


def five_landmarks(points: np.ndarray) -> np.ndarray:
    """(5, 2) eye centres, nose tip and mouth corners from (68, 2) iBUG points."""
    points = np.asarray(points, np.float32)
    return np.stack([points[list(RIGHT_EYE)].mean(0), points[list(LEFT_EYE)].mean(0),
                     points[NOSE_TIP], points[MOUTH_RIGHT], points[MOUTH_LEFT]])


def landmark_box(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """x1 y1 x2 y2 of the points' bounding rectangle, grown by ``margin`` on each side."""
    low, high = points.min(0), points.max(0)
    grow = (high - low) * margin
    return np.concatenate([low - grow, high + grow]).astype(np.float32)


def _points_68(mat: dict, where: Path) -> np.ndarray:
    for key in LANDMARK_KEYS:
        array = np.asarray(mat.get(key, np.zeros((0, 0))), np.float64)
        if array.ndim == 2 and array.shape[0] >= 2 and array.shape[1] == NUM_POINTS:
            return array[:2].T
    raise ValueError(f"{where}: no 68-point landmarks (looked for {', '.join(LANDMARK_KEYS)} "
                     f"with 68 columns)")


def read_pose_mat(path: str | Path,
                  config: HeadPoseLabelConfig = HeadPoseLabelConfig()) -> FaceLabels:
    """The one face of a 300W-LP / AFLW2000 ``.mat`` file as labels; errors name the file."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable .mat file ({exc})") from exc
    if POSE_KEY not in mat or np.asarray(mat[POSE_KEY]).size < 3:
        raise ValueError(f"{path}: missing {POSE_KEY} (pitch, yaw, roll in radians)")
    points = _points_68(mat, path)
    pose = pose_from_pose_para(mat[POSE_KEY])
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(pose))):
        raise ValueError(f"{path}: landmarks or pose are not finite")
    has_pose = bool(np.all(np.abs(pose) <= config.max_abs_angle_deg))
    return FaceLabels(landmark_box(points, config.box_margin)[None], five_landmarks(points)[None],
                      pose[None], np.ones(1, bool), np.array([has_pose]))


def _image_beside(mat_path: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = mat_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _listed_mats(list_file: Path) -> list[Path]:
    lines = list_file.read_text(encoding="utf-8").splitlines()
    mats = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            continue
        mat = (list_file.parent / name).with_suffix(".mat")
        if not mat.is_file():
            raise FileNotFoundError(f"{list_file}:{number}: {mat} not found")
        mats.append(mat)
    return mats


def find_pose_pairs(location: str | Path) -> list[tuple[Path, Path]]:
    """(``.mat``, image) pairs of a set folder or list file, sorted by path."""
    location = Path(location)
    if location.is_dir():
        mats = sorted(location.rglob("*.mat"))
    elif location.is_file():
        mats = _listed_mats(location)
    else:
        raise FileNotFoundError(f"head-pose set not found: {location}")
    pairs = [(mat, _image_beside(mat)) for mat in mats]
    found = [(mat, image) for mat, image in pairs if image is not None]
    if len(found) < len(pairs):
        LOG.info("%s: skipped %d .mat files without an image beside them", location,
                 len(pairs) - len(found))
    if not found:
        raise ValueError(f"head-pose set {location} has no .mat file with an image beside it")
    return found


class HeadPoseSource:
    """Images of one or more head-pose sets, visited in a new order on every pass.

    ``.mat`` files are read when their image is sampled (300W-LP has 122,450 of them).
    """

    def __init__(self, locations: tuple[str, ...] | list[str], seed: int,
                 config: HeadPoseLabelConfig = HeadPoseLabelConfig()):
        self.pairs = [pair for location in locations for pair in find_pose_pairs(location)]
        self.seed = seed
        self.config = config
        LOG.info("head-pose sets %s: %d images", list(locations), len(self.pairs))

    def __len__(self) -> int:
        """Number of images."""
        return len(self.pairs)

    def item(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Image and labels of pair ``index``."""
        mat, image = self.pairs[index]
        return read_image(image), read_pose_mat(mat, self.config)

    def scene(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Image and labels at position ``index`` of the endless shuffled sequence."""
        return self.item(shuffled_position(self.seed, index, len(self.pairs)))

    @property
    def needs_photometric(self) -> bool:
        """Photographs get photometric augmentation when sampled."""
        return True


class MixedSource:
    """The detection source, with a fraction of samples taken from a head-pose source instead.

    Whether sample ``index`` comes from the head-pose source is drawn from ``(seed, index)``,
    so the mix is reproducible and independent of workers and processes. ``item`` (used by the
    hard-image mining) and ``needs_photometric`` are those of the detection source.
    """

    def __init__(self, primary, headpose: HeadPoseSource, fraction: float, seed: int):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"headpose_fraction must be in [0, 1], got {fraction}")
        self.primary = primary
        self.headpose = headpose
        self.fraction = fraction
        self.seed = seed

    def from_headpose(self, index: int) -> bool:
        """Whether sample ``index`` is a head-pose image."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(index), _MIX_TAG]))
        return bool(rng.random() < self.fraction)

    def scene(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Sample ``index`` of the mixed sequence."""
        source = self.headpose if self.from_headpose(index) else self.primary
        return source.scene(index)

    def item(self, index: int) -> tuple[np.ndarray, FaceLabels]:
        """Image ``index`` of the detection source."""
        return self.primary.item(index)

    def __len__(self) -> int:
        """Number of images of the detection source."""
        return len(self.primary)

    @property
    def needs_photometric(self) -> bool:
        """As the detection source (rendered scenes bring their own augmentation)."""
        return self.primary.needs_photometric
