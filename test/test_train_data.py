"""Training data: WIDER-style label files and 300W-LP / AFLW2000 .mat head-pose sets."""
import math

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("scipy")

import scipy.io  # noqa: E402

from mos_ros.core.label_file import image_path, read_label_file  # noqa: E402
from mos_ros.core.pose import euler_to_matrix  # noqa: E402
from mos_ros.train.dataset import LabelFileSource  # noqa: E402
from mos_ros.train.headpose_data import (
    HeadPoseSource, MixedSource, find_pose_pairs, read_pose_mat)  # noqa: E402

FULL = "10 20 30 40 " + "15 30 0.0 " * 5 + "0.9 5 -10 3"
NO_POSE = "50 60 20 20 " + "55 65 0.0 " * 5 + "0.8"
NO_LANDMARKS = "70 80 10 12 " + "-1 " * 16


def _label_file(tmp_path, faces, path="0--Parade/a.jpg"):
    label = tmp_path / "label.txt"
    label.write_text(f"# {path}\n" + "\n".join(faces) + "\n")
    return label


def test_wider_line_with_missing_landmarks_or_pose_is_masked_never_zero(tmp_path):
    items = read_label_file(_label_file(tmp_path, [FULL, NO_POSE, NO_LANDMARKS]))
    labels = items[0].labels
    np.testing.assert_array_equal(labels.has_landmarks, [True, True, False])
    np.testing.assert_array_equal(labels.has_pose, [True, False, False])
    np.testing.assert_allclose(labels.poses[0], [-10, 5, 3])  # file order pitch yaw roll
    np.testing.assert_allclose(labels.boxes[2], [70, 80, 80, 92])
    assert items[0].line == 1


@pytest.mark.parametrize("line, message", [
    ("1 2 3", "label.txt:3: expected 4, 20 or 23"),
    ("1 2 x 4", "label.txt:3: not a list of numbers"),
    ("1 2 nan 4", "label.txt:3: numbers must be finite"),
    ("1 2 -3 4", "label.txt:3: box width and height must be >= 0"),
])
def test_malformed_face_lines_name_file_and_line(tmp_path, line, message):
    with pytest.raises(ValueError, match=message):
        read_label_file(_label_file(tmp_path, [FULL, line]))


def test_images_are_found_relative_to_the_label_file_and_missing_ones_are_named(tmp_path):
    label = _label_file(tmp_path, [FULL])
    assert image_path(label, read_label_file(label)[0]) == \
        tmp_path / "images" / "0--Parade" / "a.jpg"
    with pytest.raises(FileNotFoundError, match="label.txt:1: image not found"):
        LabelFileSource(label, seed=0)
    (tmp_path / "images" / "0--Parade").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "images" / "0--Parade" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    image, labels = LabelFileSource(label, seed=0).item(0)
    assert image.shape == (8, 8, 3) and len(labels) == 1


# --------------------------------------------------------------------------------------------
# .mat head-pose sets

POINTS = np.random.default_rng(3).uniform(100, 300, (68, 2))
POSE_PARA = np.array([[0.2, -0.5, 0.1, 0.0, 0.0, 0.0, 0.001]])  # pitch, yaw, roll (rad), ...


def _write_pair(folder, name, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(folder / f"{name}.mat"), fields)
    cv2.imwrite(str(folder / f"{name}.jpg"), np.full((64, 64, 3), 90, np.uint8))
    return folder / f"{name}.mat"


def test_300w_lp_mat_gives_box_five_landmarks_and_pose_in_degrees(tmp_path):
    mat = _write_pair(tmp_path, "AFW_1_0", Pose_Para=POSE_PARA, pt2d=POINTS.T)
    labels = read_pose_mat(mat)
    np.testing.assert_allclose(labels.boxes[0], [*POINTS.min(0), *POINTS.max(0)], rtol=1e-6)
    expected = [POINTS[36:42].mean(0), POINTS[42:48].mean(0), POINTS[30], POINTS[48], POINTS[54]]
    np.testing.assert_allclose(labels.landmarks[0], expected, rtol=1e-5)
    np.testing.assert_allclose(labels.poses[0], np.degrees([-0.5, 0.2, 0.1]), rtol=1e-5)
    assert labels.has_pose[0] and labels.has_landmarks[0]


def test_aflw2000_uses_pt3d_68_and_angles_beyond_99_degrees_have_no_pose(tmp_path):
    points3d = np.vstack([POINTS.T, np.zeros((1, 68))])
    aflw_21 = -np.ones((2, 21))
    mat = _write_pair(tmp_path, "image00002", Pose_Para=np.array([[0.1, 1.9, 0.0, 0, 0, 0, 1]]),
                      pt2d=aflw_21, pt3d_68=points3d)
    labels = read_pose_mat(mat)
    np.testing.assert_allclose(labels.boxes[0], [*POINTS.min(0), *POINTS.max(0)], rtol=1e-6)
    assert not labels.has_pose[0]  # yaw 108.9 degrees


def test_bad_mat_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="missing Pose_Para"):
        read_pose_mat(_write_pair(tmp_path, "a", pt2d=POINTS.T))
    with pytest.raises(ValueError, match="b.mat: no 68-point landmarks"):
        read_pose_mat(_write_pair(tmp_path, "b", Pose_Para=POSE_PARA, pt2d=np.zeros((2, 21))))


def _rotation_3ddfa(pitch, yaw, roll):
    """3DDFA's RotationMatrix.m (model frame: y up, z towards the camera)."""
    s, c = math.sin, math.cos
    rx = np.array([[1, 0, 0], [0, c(pitch), s(pitch)], [0, -s(pitch), c(pitch)]])
    ry = np.array([[c(yaw), 0, -s(yaw)], [0, 1, 0], [s(yaw), 0, c(yaw)]])
    rz = np.array([[c(roll), s(roll), 0], [-s(roll), c(roll), 0], [0, 0, 1]])
    return rx @ ry @ rz


def test_pose_para_signs_are_the_project_convention():
    model_to_camera = np.diag([1.0, -1.0, -1.0])  # y up -> down, towards camera -> forward
    # Head axes (forward, left ear, up) in the model frame of a frontal face.
    head_axes = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], float)
    for para in np.random.default_rng(0).uniform(-1.2, 1.2, (20, 3)):
        yaw, pitch, roll = np.degrees(para[[1, 0, 2]])
        np.testing.assert_allclose(model_to_camera @ _rotation_3ddfa(*para) @ head_axes,
                                   euler_to_matrix(yaw, pitch, roll), atol=1e-12)


def test_sets_skip_landmark_only_mats_and_mix_into_training(tmp_path):
    _write_pair(tmp_path / "AFW", "AFW_1_0", Pose_Para=POSE_PARA, pt2d=POINTS.T)
    (tmp_path / "landmarks").mkdir()
    scipy.io.savemat(str(tmp_path / "landmarks" / "AFW_1_0_pts.mat"), {"pts_2d": POINTS})
    assert [m.name for m, _ in find_pose_pairs(tmp_path)] == ["AFW_1_0.mat"]
    listing = tmp_path / "list.txt"
    listing.write_text("AFW/AFW_1_0\nAFW/missing\n")
    with pytest.raises(FileNotFoundError, match="list.txt:2"):
        find_pose_pairs(listing)
    headpose = HeadPoseSource([str(tmp_path)], seed=0)
    (tmp_path / "wider").mkdir()
    label = _label_file(tmp_path / "wider", [FULL])
    (tmp_path / "wider" / "images" / "0--Parade").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "wider" / "images" / "0--Parade" / "a.jpg"),
                np.zeros((8, 8, 3), np.uint8))
    mixed = MixedSource(LabelFileSource(label, 0), headpose, fraction=0.3, seed=0)
    chosen = [mixed.from_headpose(i) for i in range(400)]
    assert 0.22 < np.mean(chosen) < 0.38
    first = chosen.index(True)
    assert mixed.scene(first)[0].shape == (64, 64, 3) and len(mixed.scene(first)[1]) == 1
    assert mixed.scene(chosen.index(False))[0].shape == (8, 8, 3)
