"""Tracked faces on ROS4HRI (REP-155) topics, as ``hri_msgs`` messages.

:class:`HriPublisher` publishes, for each processed frame, ``humans/faces/tracked``
(``hri_msgs/IdsList``: the ids of the confirmed tracks, with the frame's header) and, for each
of those faces seen in the frame, ``humans/faces/<id>/roi`` (NormalizedRegionOfInterest2D),
``landmarks`` (FacialLandmarks), ``cropped`` and ``aligned`` (sensor_msgs/Image, computed only
while someone subscribes). A face's publishers are made when its id first appears and destroyed
when it leaves, so its topics live as long as its track. The names are relative: under the
root namespace they are REP-155's ``/humans/faces/...``, and namespaces and remapping apply as
to the node's other outputs. The geometry is :mod:`mos_ros.core.hri`'s.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from mos_ros.core.hri import (HriConfig, aligned_face, cropped_face, normalized_box,
                              normalized_points)
from mos_ros.core.types import Face
from mos_ros.ros import convert

try:  # hri_msgs comes with ROS4HRI installations (rosdep installs it: package.xml)
    from hri_msgs.msg import (FacialLandmarks, IdsList, NormalizedPointOfInterest2D,
                              NormalizedRegionOfInterest2D)
    #: Per-face subtopics and their message types.
    SUBTOPICS = {"roi": NormalizedRegionOfInterest2D, "landmarks": FacialLandmarks,
                 "cropped": Image, "aligned": Image}
    #: REP indices of MOS's five landmarks, in their order: the image-left eye (the person's
    #: right, seen from the front), the image-right eye, the nose tip, the image-left and
    #: image-right mouth corners.
    LANDMARK_INDICES = (FacialLandmarks.RIGHT_PUPIL, FacialLandmarks.LEFT_PUPIL,
                        FacialLandmarks.NOSE, FacialLandmarks.MOUTH_OUTER_RIGHT,
                        FacialLandmarks.MOUTH_OUTER_LEFT)
except ImportError:  # pragma: no cover - depends on the installation
    IdsList, SUBTOPICS = None, {}

#: Namespace of the faces' topics (relative: the node's namespace applies).
FACES_NAMESPACE = "humans/faces"
TRACKED_TOPIC = f"{FACES_NAMESPACE}/tracked"
#: Why the output is off although ``ros4hri`` is true (logged once).
MISSING_HRI_MSGS = ("ros4hri output is off: hri_msgs is not installed "
                    "(apt install ros-$ROS_DISTRO-hri-msgs, or set ros4hri false)")
DEPTH = 10


def face_topic(face_id: str, subtopic: str) -> str:
    """Topic of one face's ``subtopic`` (relative to the node's namespace)."""
    return f"{FACES_NAMESPACE}/{face_id}/{subtopic}"


def roi_msg(face: Face, header: Header, width: int, height: int):
    """The face's box as a NormalizedRegionOfInterest2D; confidence: the detector score."""
    xmin, ymin, xmax, ymax = normalized_box(face.box, width, height)
    return NormalizedRegionOfInterest2D(header=header, xmin=xmin, ymin=ymin, xmax=xmax,
                                        ymax=ymax, c=float(face.score))


def landmarks_msg(face: Face, header: Header, width: int, height: int):
    """FacialLandmarks with MOS's five points at their REP indices (confidence: the detector
    score) and every other point at confidence 0."""
    points = [NormalizedPointOfInterest2D() for _ in range(len(FacialLandmarks().landmarks))]
    for index, (x, y) in zip(LANDMARK_INDICES, normalized_points(face.landmarks, width, height)):
        points[index] = NormalizedPointOfInterest2D(x=float(x), y=float(y), c=float(face.score))
    return FacialLandmarks(header=header, landmarks=points, height=height, width=width)


class HriPublisher:
    """The REP-155 output of one node; see the module docstring."""

    def __init__(self, node, config: HriConfig) -> None:
        """Advertise ``humans/faces/tracked`` on ``node``."""
        self.node, self.config = node, config
        self._tracked = node.create_publisher(IdsList, TRACKED_TOPIC, DEPTH)
        self._faces: dict[str, dict[str, object]] = {}

    @property
    def face_ids(self) -> list[str]:
        """The ids whose topics exist."""
        return list(self._faces)

    def publish(self, header: Header, image: np.ndarray, tracked: Sequence[str],
                seen: Mapping[str, Face]) -> None:
        """One frame: the ``tracked`` ids, and the topics of the ``seen`` faces (by id, each
        also in ``tracked``) found in ``image`` (BGR); faces whose id is no longer tracked
        lose their topics first."""
        self._follow(tracked)
        height, width = image.shape[:2]
        for face_id, face in seen.items():
            publishers = self._faces[face_id]
            publishers["roi"].publish(roi_msg(face, header, width, height))
            publishers["landmarks"].publish(landmarks_msg(face, header, width, height))
            size = (self.config.face_width, self.config.face_height)
            if publishers["cropped"].get_subscription_count():
                publishers["cropped"].publish(convert.bgr_to_image(
                    cropped_face(image, face.box, *size), header))
            if publishers["aligned"].get_subscription_count():
                publishers["aligned"].publish(convert.bgr_to_image(
                    aligned_face(image, face.landmarks, *size), header))
        self._tracked.publish(IdsList(header=header, ids=list(tracked)))

    def _follow(self, tracked: Sequence[str]) -> None:
        """Destroy the publishers of ids that left; make them for new ids."""
        for face_id in [i for i in self._faces if i not in tracked]:
            self._destroy(self._faces.pop(face_id))
        for face_id in tracked:
            if face_id not in self._faces:
                self._faces[face_id] = {
                    name: self.node.create_publisher(kind, face_topic(face_id, name), DEPTH)
                    for name, kind in SUBTOPICS.items()}

    def _destroy(self, publishers: dict) -> None:
        for publisher in publishers.values():
            self.node.destroy_publisher(publisher)

    def close(self) -> None:
        """Destroy every publisher (the faces' topics and ``tracked``)."""
        for publishers in self._faces.values():
            self._destroy(publishers)
        self._faces = {}
        self.node.destroy_publisher(self._tracked)


def available() -> bool:
    """Whether hri_msgs is installed (else the output cannot be made)."""
    return IdsList is not None
