"""Faces in 3-D as ROS messages: camera_info handling, PoseArray, Face positions, TF frames."""
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from mos_ros.core.camera import PinholeCamera
from mos_ros.core.head3d import (MEAN_FACE_M, PIXEL_CORNER_TO_CENTRE, place_heads,
                                 viewing_rotation)
from mos_ros.core.pose import euler_to_matrix
from mos_ros.core.types import Face, HeadPose
from mos_ros.msg import Face as FaceMsg
from mos_ros.ros import convert
from mos_ros.ros.faces3d import (NO_CAMERA_INFO, PUBLISHING, HeadPlacer, face_transforms,
                                 pose_array, set_positions)

K = [600.0, 0.0, 319.5, 0.0, 600.0, 239.5, 0.0, 0.0, 1.0]


def camera_info(k=K, width=640, height=480) -> CameraInfo:
    return CameraInfo(width=width, height=height, k=k, distortion_model="plumb_bob",
                      d=[0.0] * 5)


def face_at(x, y, z) -> Face:
    """The mean face with its sellion at (x, y, z) metres, facing the camera, as a perfect
    detector sees it in a 640x480 image of the camera K (box centred on the sellion)."""
    camera = PinholeCamera.from_matrices(K)
    sellion = np.array([x, y, z], np.float64)
    rotation = viewing_rotation(sellion / np.linalg.norm(sellion)) @ euler_to_matrix(0, 0, 0)
    landmarks = camera.project(sellion + MEAN_FACE_M @ rotation.T) + PIXEL_CORNER_TO_CENTRE
    centre = camera.project(sellion[None])[0] + PIXEL_CORNER_TO_CENTRE
    half = 0.5 * 600 * 0.155 / z
    return Face((centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half),
                0.9, landmarks, HeadPose(0.0, 0.0, 0.0))


def test_no_camera_info_places_nothing_and_says_so():
    placer = HeadPlacer()
    assert placer.place([face_at(0, 0, 1)], 640, 480) is None
    assert placer.status == NO_CAMERA_INFO and not placer.ready


def test_an_uncalibrated_camera_info_stops_placing_with_its_reason():
    placer = HeadPlacer()
    placer.set_camera_info(camera_info())
    assert placer.ready and placer.status == PUBLISHING
    placer.set_camera_info(camera_info(k=[0.0] * 9))
    assert placer.place([face_at(0, 0, 1)], 640, 480) is None
    assert "K and P are both zero" in placer.status


def test_a_half_size_stream_is_placed_with_the_rescaled_calibration():
    placer = HeadPlacer()
    placer.set_camera_info(camera_info())
    face = face_at(0.1, 0.0, 1.2)
    half = Face(tuple(v / 2 for v in face.box), face.score, face.landmarks / 2, face.pose)
    (full,) = placer.place([face], 640, 480)
    (small,) = placer.place([half], 320, 240)
    assert full.position == pytest.approx((0.1, 0.0, 1.2), abs=1e-6)
    assert small.position == pytest.approx(full.position, abs=0.003)


def test_pose_array_has_the_header_and_one_unit_pose_per_face_in_order():
    placer = HeadPlacer()
    placer.set_camera_info(camera_info())
    faces = [face_at(-0.3, 0.1, 1.0), face_at(0.4, 0.0, 2.5)]
    heads = placer.place(faces, 640, 480)
    header = Header(frame_id="camera_optical")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    poses = pose_array(heads, header)
    assert poses.header == header and len(poses.poses) == 2
    assert [p.position.z for p in poses.poses] == pytest.approx([1.0, 2.5])
    for pose in poses.poses:
        q = pose.orientation
        assert np.linalg.norm([q.x, q.y, q.z, q.w]) == pytest.approx(1.0)


def test_positions_go_into_the_face_messages_and_transforms_follow_the_tracks():
    faces = [face_at(0.0, 0.0, 1.0), face_at(0.5, 0.0, 2.0)]
    heads = place_heads(faces, PinholeCamera.from_matrices(K))
    msgs = [convert.face_to_msg(face) for face in faces]
    assert not msgs[0].position_valid
    set_positions(msgs, heads)
    msgs[0].track_id, msgs[1].track_id = 7, 9
    unplaced = FaceMsg(track_id=11)
    header = Header(frame_id="camera_optical")
    header.stamp.sec = 5
    transforms = face_transforms(header, [*msgs, unplaced])
    assert [t.child_frame_id for t in transforms] == ["face_7", "face_9"]
    assert all(t.header == header for t in transforms)
    assert transforms[1].transform.translation.x == pytest.approx(0.5)
    assert transforms[1].transform.rotation == msgs[1].orientation
    with pytest.raises(ValueError, match="2 faces but 1"):
        set_positions(msgs, heads[:1])
