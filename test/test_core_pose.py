"""Specification of pose bins and the yaw/pitch/roll convention written in core.pose."""
import numpy as np
import pytest

from mos_ros.core.config import PoseBins
from mos_ros.core.pose import (bin_centres, bins_to_degrees, degrees_to_bins, euler_to_matrix,
                               euler_to_quaternion, matrix_to_euler, matrix_to_quaternion,
                               quaternion_to_euler, quaternion_to_matrix)

BINS = PoseBins()


def test_bins_span_minus_99_to_96_in_3_degree_steps():
    centres = bin_centres(BINS)
    assert len(centres) == 66 and centres[0] == -99 and centres[-1] == 96
    assert np.diff(centres) == pytest.approx(np.full(65, 3.0))


def test_expectation_of_a_peaked_distribution_is_that_bin():
    logits = np.full((3, 66), -50.0)
    logits[0, 33], logits[1, 0], logits[2, 40] = 50, 50, 50
    assert bins_to_degrees(logits, BINS) == pytest.approx([0.0, -99.0, 21.0])


def test_expectation_of_two_equal_bins_is_their_midpoint():
    logits = np.full(66, -50.0)
    logits[[30, 31]] = 10.0
    assert bins_to_degrees(logits, BINS) == pytest.approx(-7.5)


def test_expectation_of_uniform_logits_is_the_mean_centre():
    assert bins_to_degrees(np.zeros(66), BINS) == pytest.approx(-1.5)


def test_degrees_to_bins_picks_the_nearest_bin_angle_and_clips():
    angles = np.array([-120, -99, -97.1, -1.6, -1.4, 0, 1.4, 1.6, 95, 97.9, 150])
    assert degrees_to_bins(angles, BINS).tolist() == [0, 0, 1, 32, 33, 33, 33, 34, 65, 65, 65]


def test_the_taught_bin_stands_within_half_a_bin_of_the_angle_and_mirrors_with_it():
    angles = np.random.default_rng(0).uniform(-96, 96, 2000)
    index = degrees_to_bins(angles, BINS)
    assert np.all(np.abs(bin_centres(BINS)[index] - angles) <= BINS.width_deg / 2 + 1e-9)
    mirrored = degrees_to_bins(-angles, BINS)
    ties = np.isclose(np.abs(angles) % BINS.width_deg, BINS.width_deg / 2)
    np.testing.assert_allclose(bin_centres(BINS)[mirrored][~ties],
                               -bin_centres(BINS)[index][~ties])


def test_wrong_bin_count_is_rejected():
    with pytest.raises(ValueError, match="66 pose bins"):
        bins_to_degrees(np.zeros(60), BINS)


def test_frontal_face_looks_back_at_the_camera():
    rotation = euler_to_matrix(0, 0, 0)
    gaze, left, up = rotation.T
    assert gaze == pytest.approx([0, 0, -1])  # head x axis points at the camera
    assert left == pytest.approx([1, 0, 0])   # subject's left is the image's right
    assert up == pytest.approx([0, -1, 0])    # head up is image up (optical y is down)


def test_written_sign_convention():
    assert euler_to_matrix(30, 0, 0)[0, 0] < 0      # yaw > 0: gaze towards image left
    assert euler_to_matrix(0, 20, 0)[1, 0] < 0      # pitch > 0: gaze towards image up
    assert euler_to_matrix(0, 0, 15)[0, 2] > 0      # roll > 0: crown moves right (clockwise)


def test_nose_axis_projection_matches_the_visualiser_formula():
    yaw, pitch, roll = 25.0, -15.0, 10.0
    gaze = euler_to_matrix(yaw, pitch, roll)[:, 0]
    y, p = np.radians([yaw, pitch])
    assert gaze[:2] == pytest.approx([-np.sin(y), -np.sin(p) * np.cos(y)])


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, -20, 10), (-75, 40, -35), (89, 5, 5),
                                    (-10, -85, 60)])
def test_rotation_round_trips(angles):
    rotation = euler_to_matrix(*angles)
    assert rotation @ rotation.T == pytest.approx(np.eye(3), abs=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    pose = matrix_to_euler(rotation)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx(angles, abs=1e-7)
    q = euler_to_quaternion(*angles)
    assert np.linalg.norm(q) == pytest.approx(1.0) and q[3] >= 0
    assert quaternion_to_matrix(q) == pytest.approx(rotation, abs=1e-12)
    back = quaternion_to_euler(q)
    assert (back.yaw, back.pitch, back.roll) == pytest.approx(angles, abs=1e-7)


def test_quaternion_round_trip_on_random_rotations():
    rng = np.random.default_rng(3)
    for q in rng.normal(size=(200, 4)):
        q = q / np.linalg.norm(q) * (1 if q[3] >= 0 else -1)
        assert matrix_to_quaternion(quaternion_to_matrix(q)) == pytest.approx(q, abs=1e-9)


def test_profile_face_decomposes_with_roll_folded_into_pitch():
    pose = matrix_to_euler(euler_to_matrix(90, 0, 0))
    assert pose.yaw == pytest.approx(90) and pose.roll == 0.0 and pose.pitch == pytest.approx(0)
