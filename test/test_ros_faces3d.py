"""Faces in 3-D as ROS messages: camera_info handling, PoseArray, Face positions, TF frames;
over real DDS (loopback): the detector's faces/poses and the selector's face frames."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from mos_ros.core.camera import PinholeCamera
from mos_ros.core.head3d import (MEAN_FACE_M, PIXEL_CORNER_TO_CENTRE, place_heads,
                                 viewing_rotation)
from mos_ros.core.image_io import read_image
from mos_ros.core.pose import euler_to_matrix
from mos_ros.core.types import Face, HeadPose
from mos_ros.msg import Face as FaceMsg
from mos_ros.msg import FaceArray
from mos_ros.ros import convert
from mos_ros.ros.detector_node import DetectorNode
from mos_ros.ros.faces3d import (DIAGNOSTICS_KEY, NO_CAMERA_INFO, PUBLISHING, HeadPlacer,
                                 copy_positions, face_transforms, pose_array, set_positions)
from mos_ros.ros.testing import ProbeRig, wait

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
    assert placer.status_change() == NO_CAMERA_INFO
    placer.set_camera_info(camera_info())
    assert placer.ready and placer.status == PUBLISHING
    assert placer.status_change() == PUBLISHING
    placer.set_camera_info(camera_info())
    assert placer.status_change() is None            # told once per state
    placer.set_camera_info(camera_info(k=[0.0] * 9))
    assert placer.place([face_at(0, 0, 1)], 640, 480) is None
    assert "K and P are both zero" in placer.status_change()


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
    unplaced = FaceMsg(track_id=11)
    header = Header(frame_id="camera_optical")
    header.stamp.sec = 5
    transforms = face_transforms(header, {"abcd7": msgs[0], "abcd9": msgs[1],
                                          "abcd11": unplaced})
    assert [(t.header.frame_id, t.child_frame_id) for t in transforms] == [
        ("camera_optical", "face_abcd7"), ("face_abcd7", "gaze_abcd7"),
        ("camera_optical", "face_abcd9"), ("face_abcd9", "gaze_abcd9")]
    assert all(t.header.stamp == header.stamp for t in transforms)
    assert transforms[2].transform.translation.x == pytest.approx(0.5)
    assert transforms[2].transform.rotation == msgs[1].orientation
    gaze = transforms[3].transform
    assert (gaze.translation.x, gaze.translation.y, gaze.translation.z) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="2 faces but 1"):
        set_positions(msgs, heads[:1])
    tracked = [FaceMsg(track_id=3)]
    copy_positions(tracked, msgs[1:])
    assert tracked[0].position_valid and tracked[0].position == msgs[1].position
    assert tracked[0].orientation == msgs[1].orientation


def test_the_rviz_view_shows_head_poses_and_face_frames():
    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "mos.rviz").read_text())
    displays = {d["Class"]: d for d in config["Visualization Manager"]["Displays"]}
    poses = displays["rviz_default_plugins/PoseArray"]
    assert poses["Topic"]["Value"] == "faces/poses" and poses["Shape"] == "Axes"
    assert displays["rviz_default_plugins/TF"]["Show Names"] is True


# --- over real DDS ----------------------------------------------------------------------------

TIMEOUT_S = 20.0
DEMO = Path(__file__).parents[1] / "models" / "demo" / "synthetic_turned_heads.jpg"


@pytest.fixture(scope="module")
def rig():
    rig = ProbeRig("probe3d")
    yield rig
    rig.close()


def stamped(sec: int, frame_id: str = "camera_optical") -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = sec, 250
    return header


def detector(rig, model, namespace):
    values = dict(model_path=str(model), score_threshold=0.0, top_k=50, keep_top_k=3,
                  input_size=160)
    return rig.add(DetectorNode, namespace, **values)


def by_stamp(received: list, sec: int):
    return next((m for m in received if m.header.stamp.sec == sec), None)


def send_frames(rig, namespace, secs, info=None):
    """Publish camera_info (if given) and a frame per second in ``secs``, each until the
    detector's faces of that stamp came back (best effort may lose one)."""
    image_pub = rig.publisher(Image, f"{namespace}/image")
    info_pub = rig.publisher(CameraInfo, f"{namespace}/camera_info") if info else None
    frame = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    faces = rig.listen(FaceArray, f"{namespace}/faces")
    for sec in secs:
        for _ in range(5):
            if info_pub is not None:
                info_pub.publish(info)
            image_pub.publish(convert.bgr_to_image(frame, stamped(sec)))
            if wait(lambda: by_stamp(faces, sec) is not None, 4.0):
                break
        assert by_stamp(faces, sec) is not None, f"no faces for stamp {sec}"
    return faces


def test_poses_are_twins_of_the_faces_once_camera_info_is_known(rig, model):
    detector(rig, model, "/p1")
    poses = rig.listen(PoseArray, "/p1/faces/poses")
    info = camera_info(k=[150.0, 0.0, 79.5, 0.0, 150.0, 59.5, 0.0, 0.0, 1.0], width=160,
                       height=120)
    faces = send_frames(rig, "/p1", (21, 22, 23), info)
    assert wait(lambda: all(by_stamp(poses, sec) for sec in (22, 23)))
    for sec in (22, 23):
        face_array, pose_array_msg = by_stamp(faces, sec), by_stamp(poses, sec)
        assert pose_array_msg.header == face_array.header
        assert len(pose_array_msg.poses) == len(face_array.faces) == 3
        for pose, face in zip(pose_array_msg.poses, face_array.faces):
            q = pose.orientation
            assert np.linalg.norm([q.x, q.y, q.z, q.w]) == pytest.approx(1.0, abs=1e-6)
            assert face.position_valid and face.position == pose.position
            assert face.orientation == pose.orientation and pose.position.z > 0


def test_without_camera_info_no_pose_is_published_and_diagnostics_say_why(rig, model):
    node = detector(rig, model, "/p2")
    poses = rig.listen(PoseArray, "/p2/faces/poses")
    diagnostics = rig.listen(DiagnosticArray, "/diagnostics")
    faces = send_frames(rig, "/p2", (31, 32, 33))
    assert all(not f.position_valid for m in faces for f in m.faces)

    def head_poses_status():
        mine = [s for d in diagnostics for s in d.status
                if s.name.startswith(node.get_fully_qualified_name())]
        values = {kv.key: kv.value for kv in mine[-1].values} if mine else {}
        return values.get(DIAGNOSTICS_KEY)

    assert wait(lambda: head_poses_status() is not None)
    assert head_poses_status() == NO_CAMERA_INFO
    assert poses == []


@pytest.fixture
def detector_process():
    """mos_detector with the shipped model in a process of its own, namespace /p3."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mos_ros.ros.detector_node", "--ros-args", "-r", "__ns:=/p3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    yield process
    process.terminate()
    try:
        process.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()


def test_a_detector_in_another_process_places_real_faces_at_plausible_distances(
        rig, detector_process):
    image = read_image(DEMO)
    height, width = image.shape[:2]
    focal = width / 2 / np.tan(np.radians(30.0))          # a 60 degree camera
    info = camera_info(k=[focal, 0.0, (width - 1) / 2, 0.0, focal, (height - 1) / 2, 0.0, 0.0,
                          1.0], width=width, height=height)
    poses = rig.listen(PoseArray, "/p3/faces/poses")
    faces = rig.listen(FaceArray, "/p3/faces")
    image_pub = rig.publisher(Image, "/p3/image")
    info_pub = rig.publisher(CameraInfo, "/p3/camera_info")
    assert wait(lambda: rig.probe.count_publishers("/p3/faces/poses") > 0)
    for sec in range(41, 71):
        info_pub.publish(info)
        image_pub.publish(convert.bgr_to_image(image, stamped(sec)))
        if wait(lambda: poses and by_stamp(faces, poses[-1].header.stamp.sec), 1.0):
            break
    assert poses, f"no poses ({len(faces)} face arrays came back)"
    twin = by_stamp(faces, poses[-1].header.stamp.sec)
    assert len(poses[-1].poses) == len(twin.faces) == 3
    for pose, face in zip(poses[-1].poses, twin.faces):
        # Faces 43-89 px wide in this image are, for an adult, 1-2.5 m from a 60 deg camera.
        assert 0.7 < pose.position.z < 3.5
        assert face.position == pose.position


@pytest.fixture
def selector_process():
    """face_selector in a process of its own, namespace /s3d."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mos_ros.ros.selector_node", "--ros-args", "-r", "__ns:=/s3d"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield process
    process.terminate()
    try:
        process.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()


def placed_face(x0: float, position, valid: bool = True) -> FaceMsg:
    """A plausible frontal face 60 px wide at image x ``x0``, placed at ``position``."""
    eyes_y, box = 70.0, (x0, 40.0, x0 + 60.0, 120.0)
    landmarks = [(x0 + 18, eyes_y), (x0 + 42, eyes_y), (x0 + 30, eyes_y + 16),
                 (x0 + 21, eyes_y + 30), (x0 + 39, eyes_y + 30)]
    face = Face(box, 0.95, np.array(landmarks, np.float32), HeadPose(0.0, 0.0, 0.0))
    msg = convert.face_to_msg(face)
    msg.position.x, msg.position.y, msg.position.z = position
    msg.position_valid = valid
    return msg


def test_the_selector_in_another_process_sends_a_frame_per_tracked_face_and_drops_gone_ones(
        rig, selector_process):
    frame = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    transforms = rig.listen(TFMessage, "/tf", 100)
    tracked = rig.listen(FaceArray, "/s3d/faces/tracked")
    assert wait(lambda: rig.probe.count_publishers("/tf") > 0
                and rig.probe.count_publishers("/s3d/faces/tracked") > 0)
    image_pub = rig.publisher(Image, "/s3d/image")
    faces_pub = rig.publisher(FaceArray, "/s3d/faces", 10)
    a, b, c = (-0.4, 0.0, 1.5), (0.4, 0.0, 1.5), (0.0, 0.0, 2.0)
    for sec in range(1, 9):
        faces = [placed_face(30, a)] + ([placed_face(220, b), placed_face(125, c, False)]
                                        if sec <= 4 else [])
        header = stamped(sec)
        for _ in range(5):  # again when lost (a new writer may not be matched on both sides)
            faces_pub.publish(FaceArray(header=header, image_width=320, image_height=240,
                                        faces=faces))
            image_pub.publish(convert.bgr_to_image(frame, header))
            if wait(lambda: by_stamp(tracked, sec) is not None, 2.0):
                break
        assert by_stamp(tracked, sec) is not None, f"no tracked faces for stamp {sec}"
    wait(lambda: any(t.header.stamp.sec == 8 for m in transforms for t in m.transforms), 5.0)

    def frames(sec):
        return {t.child_frame_id: t for m in transforms for t in m.transforms
                if t.header.stamp.sec == sec}

    heads = {round(t.transform.translation.x, 1): name for name, t in frames(4).items()
             if name.startswith("face_")}
    assert sorted(heads) == [-0.4, 0.4]                 # the face without position has none
    a_id, b_id = (heads[x].removeprefix("face_") for x in (-0.4, 0.4))
    assert set(frames(4)) == {f"{kind}_{i}" for kind in ("face", "gaze") for i in (a_id, b_id)}
    for name, transform in frames(4).items():           # at the image stamp; gaze on the head
        parent = stamped(4).frame_id if name.startswith("face_") else f"face_{name[5:]}"
        assert transform.header.stamp == stamped(4).stamp and transform.header.frame_id == parent
    for sec in (6, 7, 8):                               # face B left: its frames are not sent
        assert set(frames(sec)) == {f"face_{a_id}", f"gaze_{a_id}"}
