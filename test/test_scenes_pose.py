"""Scenes that teach head pose: whole scenes turned with their labels, the in-plane part of a
photo face's turn free of the turn limit, the pose spread of the pose engine config, and
labels that the FaceMesh teacher (which never saw them) reads back from the turned render."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")


from mos_ros.core.labels import FaceLabels  # noqa: E402
from mos_ros.core.nms import iou_matrix  # noqa: E402
from mos_ros.core.pose import euler_to_matrix, matrix_to_euler  # noqa: E402
from mos_ros.data.engine import EngineConfig  # noqa: E402
from mos_ros.scenes import composer, reface  # noqa: E402
from mos_ros.scenes.bank import FaceBank  # noqa: E402
from mos_ros.scenes.config import SceneConfig  # noqa: E402
from mos_ros.scenes.rotation import rotate_scene, sample_turn  # noqa: E402
from mos_ros.scenes.sampling import seeded_rng  # noqa: E402

POSE_ENGINE = Path(__file__).resolve().parents[1] / "config" / "data_engine_pose.yaml"


@pytest.fixture(scope="module")
def bank(obama_sources):
    return FaceBank(faces=(obama_sources,))


def _one_face_scenes(**changes) -> SceneConfig:
    """Scenes holding one large turned photo face, wholly inside, no camera effects."""
    return SceneConfig(**{**dict(
        faces_range=(1, 1), face_px_range=(150.0, 200.0), empty_probability=0.0,
        crowd_probability=0.0, photo_scene_probability=0.0, procedural_fraction=0.0,
        occlusion_probability=0.0, augment_probability=0.0, photo_background_probability=0.0,
        yaw_sigma_deg=15.0, pitch_sigma_deg=8.0, max_outside=0.0), **changes})


# --- the turn and its labels ---------------------------------------------------------------


def test_turns_stay_mostly_within_the_common_range_and_some_go_wide():
    rng = np.random.default_rng(0)
    turns = np.array([sample_turn(rng, 45.0, 90.0, 0.15) for _ in range(4000)])
    wide = np.abs(turns) > 45
    assert wide.mean() == pytest.approx(0.15, abs=0.02)
    assert np.abs(turns).max() <= 90 and np.abs(turns[wide]).min() >= 45
    assert (turns > 0).mean() == pytest.approx(0.5, abs=0.03)


def test_a_turned_scene_drops_faces_that_leave_it_and_poses_beyond_the_bins():
    labels = FaceLabels(np.array([[180, 180, 220, 220], [0, 0, 30, 30.0]], np.float32),
                        np.zeros((2, 5, 2), np.float32),
                        np.array([[0, 0, 40], [0, 0, 0.0]], np.float32),
                        np.array([True, True]), np.array([True, True]))
    image = np.zeros((400, 400, 3), np.uint8)
    turned, moved = rotate_scene(image, labels, -70.0)   # roll 40 + 70 = 110: no bin
    assert len(moved) == 1                               # the corner face left the picture
    assert not moved.has_pose[0] and moved.has_landmarks[0]
    assert turned.shape == image.shape
    _, kept = rotate_scene(image, labels, 30.0)
    assert kept.has_pose[0] and kept.poses[0] == pytest.approx([0, 0, 10], abs=1e-4)


def test_the_in_plane_part_of_a_turn_is_free_of_the_limit(obama_sources):
    source = obama_sources[0]
    rolled = matrix_to_euler(source.rotation)
    wanted = euler_to_matrix(rolled.yaw, rolled.pitch, rolled.roll + 70.0)
    _, limited = reface.reachable_rotation((source,), wanted, 40.0)
    _, free = reface.reachable_rotation((source,), wanted, 40.0, free_in_plane=True)
    assert reface.turn_angle_deg(limited, wanted) > 25        # clipped to 40 of the 70
    assert reface.turn_angle_deg(free, wanted) < 1.0           # nearly all of it is in-plane
    far = euler_to_matrix(rolled.yaw + 80.0, rolled.pitch, rolled.roll + 50.0)
    _, clipped = reface.reachable_rotation((source,), far, 40.0, free_in_plane=True)
    assert reface.turn_angle_deg(clipped, far) > 20            # the turn away is still limited


@pytest.mark.parametrize("seed", range(4))
def test_labels_of_a_turned_scene_sit_on_the_rendered_face(bank, seed):
    # FaceMesh, which never saw the labels, finds box, landmarks and roll where they say.
    from mos_ros.data.mesh_fit import fit_face_mesh
    config = _one_face_scenes(scene_turn_probability=1.0, scene_turn_deg=60.0,
                              turn_in_plane_free=True)
    image, labels = composer.compose(seeded_rng(11, seed), config, bank)
    assert len(labels) == 1 and labels.has_pose[0]
    fit = fit_face_mesh(image, labels.boxes[0])
    assert fit is not None
    size = float(np.sqrt(np.prod(labels.boxes[0, 2:] - labels.boxes[0, :2])))
    errors = np.linalg.norm(fit.landmarks - labels.landmarks[0], axis=1) / size
    assert errors.mean() < 0.04
    # The box is the extent of the 468 points; on a turned face its corners hang on the few
    # outermost points, so the two fits differ more than upright (IoU > 0.85 there).
    assert iou_matrix(fit.box[None], labels.boxes[:1])[0, 0] > 0.75
    roll_error = (fit.roll - labels.poses[0, 2] + 180) % 360 - 180
    assert abs(roll_error) < 5.0


# --- the pose engine config -------------------------------------------------------------


def test_the_pose_engine_config_reads_and_turns_every_stage():
    from mos_ros.train.config import TrainConfig
    config = EngineConfig.from_yaml(POSE_ENGINE)
    root = POSE_ENGINE.parents[1]
    for stage in config.stages:
        assert stage.scene.scene_turn_probability >= 0.5
        assert stage.scene.turn_in_plane_free and stage.scene.hand_probability > 0
        train = TrainConfig.from_yaml(root / stage.train_config)
        assert train.loss.pose_weight == 0.5 and train.variant == "mos-mbv2"


def test_the_pose_scenes_spread_pose_as_asked(bank):
    base = EngineConfig.from_yaml(POSE_ENGINE).stages[0].scene
    config = dataclasses.replace(base, width=224, height=224, face_px_range=(40.0, 120.0),
                                 crowd_probability=0.0, photo_scene_probability=0.0,
                                 augment_probability=0.0, empty_probability=0.0,
                                 hand_probability=0.0, free_hand_probability=0.0)
    poses = []
    for index in range(80):
        _, labels = composer.compose(seeded_rng(3, index), config, bank)
        poses += [p for p, has in zip(labels.poses, labels.has_pose) if has]
    yaw, pitch, roll = np.abs(np.array(poses)).T
    assert len(poses) >= 150
    assert (roll > 30).mean() >= 0.2 and (roll > 60).mean() >= 0.03 and roll.max() > 75
    assert (roll <= 45).mean() >= 0.6
    assert (pitch > 25).mean() >= 0.1 and pitch.max() > 35
    assert (yaw > 60).mean() >= 0.05 and yaw.max() > 80
