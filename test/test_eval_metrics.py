"""The shared evaluation figures: greedy matching, average precision, pose error and NME."""
import numpy as np
import pytest

from mos_ros.evaluate.metrics import (
    average_precision, covered_fraction, greedy_matches, matched_truth, mean_pose_errors, nme,
    pooled_average_precision, pose_errors)

TRUTH = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float64)


def test_average_precision_is_the_area_under_the_precision_envelope():
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    assert average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == \
        pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 0.75])) == \
        pytest.approx(0.5 * 1.0 + 0.5 * 0.75)


def test_the_best_scored_detection_takes_a_face_and_a_duplicate_is_left_unmatched():
    boxes = np.array([[1, 0, 11, 10], [0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]])
    scores = [0.6, 0.9, 0.8, 0.95]
    assert greedy_matches(TRUTH, boxes, scores) == {1: 0, 2: 1}
    assert matched_truth(TRUTH, boxes, scores).tolist() == [-1, 0, 1, -1]
    assert matched_truth(np.zeros((0, 4)), boxes, scores).tolist() == [-1] * 4
    assert greedy_matches(TRUTH, np.zeros((0, 4)), []) == {}


def test_a_match_needs_the_iou_threshold():
    half = np.array([[5, 0, 15, 10]])  # IoU 1/3 with the first face
    assert greedy_matches(TRUTH, half, [1.0]) == {}
    assert greedy_matches(TRUTH, half, [1.0], iou=0.3) == {0: 0}


def test_pooled_ap_orders_detections_of_all_images_by_score():
    # Hits at 0.9 and 0.7, a false positive at 0.8, three faces: P/R steps 1/3, 2/3.
    scored = [(0.7, True), (0.9, True), (0.8, False)]
    assert pooled_average_precision(scored, 3) == pytest.approx(1 / 3 + 1 / 3 * 2 / 3)
    assert pooled_average_precision([], 3) == 0.0
    assert pooled_average_precision(scored, 0) == 0.0
    # The trivial baseline: one detection on every face at one score is perfect.
    assert pooled_average_precision([(0.5, True)] * 3, 3) == pytest.approx(1.0)


def test_covered_fraction_counts_reference_boxes_some_candidate_overlaps():
    assert covered_fraction(TRUTH, TRUTH[:1] + 1) == (1, 2)
    assert covered_fraction(TRUTH, np.zeros((0, 4))) == (0, 2)
    assert covered_fraction(np.zeros((0, 4)), TRUTH) == (0, 0)


def test_pose_errors_are_absolute_angles_and_their_mean_is_nan_without_faces():
    errors = pose_errors([[10, -5, 0], [0, 0, 3]], [[0, 5, 0], [0, 0, -3]])
    assert errors.tolist() == [[10, 10, 0], [0, 0, 6]]
    assert mean_pose_errors(list(errors)).tolist() == [5, 5, 3]
    assert np.isnan(mean_pose_errors([])).all()


def test_nme_divides_the_mean_point_distance_by_the_face_size():
    truth = np.zeros((5, 2))
    predicted = truth + [3.0, 4.0]  # every point 5 px off
    assert nme(predicted, truth, [0, 0, 50, 200]) == pytest.approx(5 / 100)
