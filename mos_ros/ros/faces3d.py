"""Faces in 3-D on ROS: head poses as ``geometry_msgs/PoseArray`` and TF frames per track.

The placement itself is :mod:`mos_ros.core.head3d`; this module holds the camera calibration a
node received and turns placed heads into messages:

* :class:`HeadPlacer` keeps the newest ``camera_info`` and places the faces of an image;
  without a usable one it places nothing and :attr:`HeadPlacer.status` says why (for the log,
  once, and for diagnostics).
* :func:`pose_array`: one pose per face, in the FaceArray's order and with its header.
* :func:`set_positions`: the heads' positions (and orientations) into a FaceArray's faces;
  :func:`copy_positions` carries them on, e.g. to tracked faces.
* :func:`face_transforms`: REP-155's ``face_<id>`` frame per tracked face, child of the
  image's optical frame (the head's pose), and ``gaze_<id>``, child of ``face_<id>`` (the
  gaze axes of :data:`mos_ros.core.head3d.GAZE_IN_HEAD`), both at the image stamp;
  :class:`TransformPublisher` sends them on ``/tf``. Frames of faces that left are simply no
  longer sent.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from geometry_msgs.msg import Point, Pose, PoseArray, Quaternion, TransformStamped
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from mos_ros.core.camera import CameraError, PinholeCamera
from mos_ros.core.head3d import GAZE_QUATERNION, Head3D, place_heads
from mos_ros.core.types import Face

#: Frames of a tracked face: these prefixes and its face id (REP-155).
FACE_FRAME_PREFIX, GAZE_FRAME_PREFIX = "face_", "gaze_"
#: Diagnostics key of the head pose state.
DIAGNOSTICS_KEY = "head poses"
NO_CAMERA_INFO = "not published: no camera_info received"
PUBLISHING = "published"
#: Depth of the /tf publisher (tf2's own broadcasters use 100).
TF_DEPTH = 100


class HeadPlacer:
    """The newest camera calibration of a stream, and faces placed with it."""

    def __init__(self) -> None:
        self._camera: PinholeCamera | None = None
        self.status = NO_CAMERA_INFO
        self._told = ""

    def status_change(self) -> str | None:
        """The status when it changed since the last call (None otherwise), so a node logs
        each state once: no camera_info yet, publishing, an unusable camera_info."""
        if self.status == self._told:
            return None
        self._told = self.status
        return self.status

    @property
    def ready(self) -> bool:
        """True once a usable camera_info has arrived."""
        return self._camera is not None

    def set_camera_info(self, msg: CameraInfo) -> None:
        """Take a camera_info; an unusable one (uncalibrated: K and P zero) stops placing."""
        try:
            self._camera = PinholeCamera.from_matrices(msg.k, msg.p, msg.d,
                                                       msg.distortion_model, msg.width,
                                                       msg.height)
            self.status = PUBLISHING
        except CameraError as exc:
            self._camera = None
            self.status = f"not published: unusable camera_info: {exc}"

    def place(self, faces: Sequence[Face], width: int, height: int
              ) -> tuple[Head3D, ...] | None:
        """The faces of a ``width`` x ``height`` image in its optical frame; None without a
        camera (the calibration is rescaled when the image is a resized stream)."""
        if self._camera is None:
            return None
        return place_heads(faces, self._camera.scaled_to(width, height))


def _point(head: Head3D) -> Point:
    x, y, z = head.position
    return Point(x=x, y=y, z=z)


def _quaternion(head: Head3D) -> Quaternion:
    x, y, z, w = head.orientation
    return Quaternion(x=x, y=y, z=z, w=w)


def pose_array(heads: Sequence[Head3D], header: Header) -> PoseArray:
    """The heads as poses (sellion, head orientation) in ``header``'s frame, in order."""
    return PoseArray(header=header, poses=[Pose(position=_point(h), orientation=_quaternion(h))
                                           for h in heads])


def set_positions(face_msgs: Sequence, heads: Sequence[Head3D]) -> None:
    """Write each head's position and orientation into its ``mos_ros/Face`` message."""
    if len(face_msgs) != len(heads):
        raise ValueError(f"{len(face_msgs)} faces but {len(heads)} placed heads")
    for msg, head in zip(face_msgs, heads):
        msg.position, msg.orientation = _point(head), _quaternion(head)
        msg.position_valid = True


def copy_positions(targets: Sequence, sources: Sequence) -> None:
    """Carry position, position_valid and orientation from ``sources`` to ``targets``
    (``mos_ros/Face`` messages, pairwise), e.g. from detected to tracked faces."""
    for target, source in zip(targets, sources, strict=True):
        target.position, target.position_valid = source.position, source.position_valid
        target.orientation = source.orientation


def face_frame(face_id: str) -> str:
    """TF frame of a tracked face's head."""
    return f"{FACE_FRAME_PREFIX}{face_id}"


def gaze_frame(face_id: str) -> str:
    """TF frame of a tracked face's gaze."""
    return f"{GAZE_FRAME_PREFIX}{face_id}"


def face_transforms(header: Header, tracked: Mapping[str, object]) -> list[TransformStamped]:
    """``face_<id>`` (image frame -> head) and ``gaze_<id>`` (head -> gaze) at the image
    stamp for every tracked ``mos_ros/Face`` with a position, given by its face id."""
    transforms = []
    for face_id, face in tracked.items():
        if not face.position_valid:
            continue
        head = TransformStamped(header=header, child_frame_id=face_frame(face_id))
        p = face.position
        head.transform.translation.x = p.x
        head.transform.translation.y = p.y
        head.transform.translation.z = p.z
        head.transform.rotation = face.orientation
        gaze = TransformStamped(header=Header(stamp=header.stamp, frame_id=face_frame(face_id)),
                                child_frame_id=gaze_frame(face_id))
        x, y, z, w = GAZE_QUATERNION
        gaze.transform.rotation = Quaternion(x=x, y=y, z=z, w=w)
        transforms += [head, gaze]
    return transforms


class TransformPublisher:
    """Sends transforms on ``/tf`` (tf2_msgs/TFMessage) as a tf2 broadcaster does."""

    def __init__(self, node) -> None:
        self._publisher = node.create_publisher(TFMessage, "/tf", TF_DEPTH)

    def send(self, transforms: Sequence[TransformStamped]) -> None:
        """Publish ``transforms`` as one message; nothing when there are none."""
        if transforms:
            self._publisher.publish(TFMessage(transforms=list(transforms)))
