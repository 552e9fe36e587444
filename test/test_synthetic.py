"""The synthetic face set: deterministic scenes whose labels agree with the pixels and poses."""
import copy
import dataclasses
from typing import NamedTuple

import cv2
import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.core.label_file import image_path, read_label_file  # noqa: E402
from mos_ros.core.labels import FaceLabels  # noqa: E402
from mos_ros.core.pose import euler_to_matrix, matrix_to_euler  # noqa: E402
from mos_ros.scenes.backgrounds import render_background  # noqa: E402
from mos_ros.scenes.composer import ProceduralScenes, write_synthetic_set  # noqa: E402
from mos_ros.scenes.config import SyntheticConfig  # noqa: E402
from mos_ros.scenes.face_mesh import load_face_mesh  # noqa: E402
from mos_ros.scenes.procedural import pose_face  # noqa: E402
from mos_ros.scenes.sampling import sample_pose, seeded_rng  # noqa: E402
from mos_ros.train.augment import flip_horizontal  # noqa: E402

SMALL = SyntheticConfig(width=320, height=320, face_px_range=(12.0, 200.0))
CLEAN = dataclasses.replace(SMALL, augment_probability=0.0)


class Scene(NamedTuple):
    background: np.ndarray
    image: np.ndarray
    labels: FaceLabels


def scenes(config, count, seed=11):
    """Procedural scenes, each with its background alone: the composer draws the background
    first, so the same generator state gives it again."""
    compose = ProceduralScenes(config)
    made = []
    for i in range(count):
        rng = seeded_rng(seed, i)
        background = render_background(copy.deepcopy(rng), compose.scene_config.procedural)
        made.append(Scene(background, *compose(rng)))
    return made


def render_scene(rng, config):
    image, labels = ProceduralScenes(config)(rng)
    return image, labels.boxes, labels.landmarks, labels.poses


def test_same_seed_gives_the_same_scene_and_another_seed_does_not():
    first = render_scene(seeded_rng(3, 7), SMALL)
    again = render_scene(seeded_rng(3, 7), SMALL)
    other = render_scene(seeded_rng(3, 8), SMALL)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_scenes_come_as_an_image_and_float32_labels_of_matching_lengths():
    image, boxes, landmarks, poses = render_scene(seeded_rng(0, 0), SMALL)
    assert image.shape == (320, 320, 3) and image.dtype == np.uint8
    count = len(boxes)
    assert count >= 1
    assert boxes.shape == (count, 4) and landmarks.shape == (count, 5, 2)
    assert poses.shape == (count, 3)
    assert {boxes.dtype, landmarks.dtype, poses.dtype} == {np.dtype(np.float32)}


def test_boxes_lie_in_the_image_and_their_long_side_is_in_the_configured_range():
    low, high = SMALL.face_px_range
    for scene in scenes(SMALL, 12):
        boxes = scene.labels.boxes
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        assert np.all(sides >= low - 1e-3) and np.all(sides <= high + 1e-3)
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= 320)


def test_landmarks_lie_in_their_box_and_the_image_left_eye_comes_first():
    checked = 0
    for scene in scenes(SMALL, 12):
        labels = scene.labels
        near_frontal = np.abs(labels.poses[:, 0]) < 45
        for box, points in zip(labels.boxes[near_frontal], labels.landmarks[near_frontal]):
            assert np.all(points >= box[:2] - 1e-3) and np.all(points <= box[2:] + 1e-3)
            assert points[0, 0] < points[1, 0], "eye order must be image-left first"
            assert points[3, 0] < points[4, 0], "mouth order must be image-left first"
            checked += 1
    assert checked >= 10


def test_face_pixels_differ_from_the_background_inside_every_box():
    for scene in scenes(CLEAN, 10):
        changed = np.any(scene.image != scene.background, axis=2)
        for x1, y1, x2, y2 in scene.labels.boxes:
            inside = changed[int(np.ceil(y1)):int(y2), int(np.ceil(x1)):int(x2)]
            if inside.size:
                assert inside.mean() > 0.6


def test_faces_are_drawn_where_the_labels_say_and_nowhere_else_is_a_face():
    scene = scenes(CLEAN, 1, seed=5)[0]
    changed = np.any(scene.image != scene.background, axis=2)
    covered = np.zeros_like(changed)
    for x1, y1, x2, y2 in scene.labels.boxes:
        side = max(x2 - x1, y2 - y1)
        # Head, hair and neck extend beyond the face box, bounded by a couple of face sizes.
        covered[max(0, int(y1 - side)):int(y2 + 2 * side),
                max(0, int(x1 - side)):int(x2 + side)] = True
    assert not np.any(changed & ~covered)


def test_pose_labels_are_the_rotation_applied_to_the_mesh():
    mesh = load_face_mesh()
    for scene in scenes(SMALL, 4):
        for yaw, pitch, roll in scene.labels.poses:
            rotation = euler_to_matrix(yaw, pitch, roll)
            geometry = pose_face(float(yaw), float(pitch), float(roll), 6.0)
            # Recover the rotation from the posed mesh (orthogonal Procrustes) and read its angles.
            u, _, vt = np.linalg.svd(geometry.camera_vertices.T.astype(np.float64) @ mesh.vertices)
            fitted = u @ vt
            np.testing.assert_allclose(fitted, rotation, atol=1e-5)
            recovered = matrix_to_euler(fitted)
            np.testing.assert_allclose([recovered.yaw, recovered.pitch, recovered.roll],
                                       [yaw, pitch, roll], atol=1e-3)


def test_positive_yaw_turns_the_nose_to_the_image_left_as_core_pose_says():
    frontal = pose_face(0.0, 0.0, 0.0, 6.0)
    turned = pose_face(30.0, 0.0, 0.0, 6.0)
    assert turned.landmarks[2, 0] < frontal.landmarks[2, 0] - 1.0


def test_sampled_angles_stay_within_limits_and_favour_frontal():
    config = SyntheticConfig()
    rng = np.random.default_rng(0)
    poses = np.array([sample_pose(rng, config) for _ in range(2000)])
    assert np.all(np.abs(poses[:, 0]) <= 90) and np.all(np.abs(poses[:, 1]) <= 45)
    assert np.all(np.abs(poses[:, 2]) <= 40)
    assert np.mean(np.abs(poses[:, 0]) < 30) > 0.5


def test_written_label_file_reads_back_the_rendered_numbers(tmp_path):
    label_file = write_synthetic_set(tmp_path, 3, seed=21, config=SMALL)
    items = read_label_file(label_file)
    assert len(items) == 3
    for index, item in enumerate(items):
        _, boxes, landmarks, poses = render_scene(seeded_rng(21, index), SMALL)
        np.testing.assert_array_equal(item.labels.boxes[:, :2], boxes[:, :2])
        np.testing.assert_allclose(item.labels.boxes, boxes, atol=1e-4)
        np.testing.assert_array_equal(item.labels.landmarks, landmarks)
        np.testing.assert_array_equal(item.labels.poses, poses)
        assert item.labels.has_landmarks.all() and item.labels.has_pose.all()
        assert cv2.imread(str(image_path(label_file, item))).shape == (320, 320, 3)


def test_label_lines_use_the_mos_pitch_yaw_roll_order(tmp_path):
    label_file = write_synthetic_set(tmp_path, 1, seed=2, config=SMALL)
    face_line = label_file.read_text().splitlines()[1].split()
    item = read_label_file(label_file)[0]
    yaw, pitch, roll = item.labels.poses[0]
    assert len(face_line) == 23
    assert [float(v) for v in face_line[20:]] == [pitch, yaw, roll]


def test_malformed_label_line_is_reported_with_its_line_number(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text("# a.jpg\n1 2 3\n")
    with pytest.raises(ValueError, match="label.txt:2"):
        read_label_file(path)


def test_flip_swaps_left_and_right_landmarks_and_negates_yaw_and_roll():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :5] = 255
    labels = FaceLabels.complete(
        [[2, 1, 8, 9]], [[[3, 3], [6, 3], [4.5, 5], [3.5, 7], [5.5, 7]]], [[30, -10, 12]])
    flipped_image, flipped = flip_horizontal(image, labels)
    np.testing.assert_array_equal(flipped_image[:, -5:], 255)
    np.testing.assert_array_equal(flipped.boxes, [[12, 1, 18, 9]])
    np.testing.assert_array_equal(
        flipped.landmarks, [[[14, 3], [17, 3], [15.5, 5], [14.5, 7], [16.5, 7]]])
    np.testing.assert_array_equal(flipped.poses, [[-30, -10, -12]])


def test_mirrored_pose_renders_the_mirrored_landmarks():
    """Flip semantics agree with the geometry: (yaw, pitch, roll) -> (-yaw, pitch, -roll)."""
    width = 100.0
    original = pose_face(35.0, 12.0, 20.0, 6.0)
    mirrored = pose_face(-35.0, 12.0, -20.0, 6.0)
    labels = FaceLabels.complete([np.r_[original.box[:2] + 50, original.box[2:] + 50]],
                                 original.landmarks + 50, [[35, 12, 20]])
    _, flipped = flip_horizontal(np.zeros((100, int(width), 3), np.uint8), labels)
    expected = mirrored.landmarks + np.float32([width - 50, 50])
    np.testing.assert_allclose(flipped.landmarks[0], expected, atol=1e-4)
    np.testing.assert_allclose(flipped.poses[0], [-35, 12, -20])


def test_impossible_face_size_range_is_rejected_with_the_field_name():
    with pytest.raises(ValueError, match="face_px_range"):
        SyntheticConfig(width=100, height=100, face_px_range=(12.0, 400.0))
