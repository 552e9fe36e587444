"""Specification of anchors, the box/landmark codec and NMS."""
import numpy as np
import pytest

from mos_ros.core.anchors import generate_anchors, mirrored_anchor_order, num_anchors
from mos_ros.core.codec import decode_boxes, decode_landmarks, encode_boxes, encode_landmarks
from mos_ros.core.config import PriorConfig
from mos_ros.core.nms import iou_matrix, nms

PRIORS = PriorConfig()


def test_anchor_count_at_640_is_16800():
    assert len(generate_anchors(PRIORS, 640, 640)) == 16800 == num_anchors(PRIORS, 640, 640)


def test_anchor_count_uses_ceil_for_odd_sizes():
    # 481x641: levels ceil(481/8)*ceil(641/8)=61*81, 31*41, 16*21 cells, two sizes each
    assert num_anchors(PRIORS, 481, 641) == 2 * (61 * 81 + 31 * 41 + 16 * 21)
    assert len(generate_anchors(PRIORS, 481, 641)) == num_anchors(PRIORS, 481, 641)


def test_anchor_order_is_level_row_column_size():
    anchors = generate_anchors(PRIORS, 64, 96)  # level 0: 8 rows x 12 cols
    first_cell, second_size = anchors[0], anchors[1]
    assert first_cell == pytest.approx([4 / 96, 4 / 64, 16 / 96, 16 / 64])
    assert second_size == pytest.approx([4 / 96, 4 / 64, 32 / 96, 32 / 64])
    assert anchors[2][:2] == pytest.approx([12 / 96, 4 / 64])  # next column, same row
    assert anchors[2 * 12][:2] == pytest.approx([4 / 96, 12 / 64])  # next row
    level1_start = 2 * 8 * 12
    assert anchors[level1_start] == pytest.approx([8 / 96, 8 / 64, 64 / 96, 64 / 64])


def random_boxes(rng, n):
    xy = rng.uniform(0.0, 0.8, size=(n, 2))
    wh = rng.uniform(0.01, 0.2, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


@pytest.mark.parametrize("height, width", [(320, 320), (480, 640), (100, 96)])
def test_mirrored_anchor_order_maps_each_anchor_onto_its_mirror(height, width):
    priors = PriorConfig()
    anchors = generate_anchors(priors, height, width)
    order = mirrored_anchor_order(priors, height, width)
    mirrored = anchors[order]
    np.testing.assert_allclose(mirrored[:, 0], 1.0 - anchors[:, 0], atol=1e-6)
    np.testing.assert_array_equal(mirrored[:, 1:], anchors[:, 1:])
    np.testing.assert_array_equal(order[order], np.arange(len(anchors)))


def test_mirrored_anchor_order_refuses_a_width_off_the_anchor_grid():
    with pytest.raises(ValueError, match="width 100 is not a multiple"):
        mirrored_anchor_order(PriorConfig(), 96, 100)


def test_decode_inverts_encode_for_boxes_and_landmarks():
    rng = np.random.default_rng(0)
    anchors = generate_anchors(PRIORS, 320, 320)[rng.choice(4200, 50)]
    boxes = random_boxes(rng, 50)
    landmarks = rng.uniform(0, 1, size=(50, 10))
    encoded = encode_boxes(boxes, anchors, PRIORS.variances)
    assert decode_boxes(encoded, anchors, PRIORS.variances) == pytest.approx(boxes, abs=1e-5)
    encoded_l = encode_landmarks(landmarks, anchors, PRIORS.variances)
    decoded_l = decode_landmarks(encoded_l, anchors, PRIORS.variances)
    assert decoded_l == pytest.approx(landmarks, abs=1e-5)


def test_zero_regression_decodes_to_the_anchor_itself():
    anchors = np.array([[0.5, 0.25, 0.1, 0.2]], dtype=np.float32)
    box = decode_boxes(np.zeros((1, 4)), anchors, PRIORS.variances)
    assert box[0] == pytest.approx([0.45, 0.15, 0.55, 0.35])
    assert decode_landmarks(np.zeros((1, 10)), anchors, PRIORS.variances)[0] == pytest.approx(
        [0.5, 0.25] * 5)


def test_encode_rejects_degenerate_boxes():
    anchors = np.array([[0.5, 0.5, 0.1, 0.1]])
    with pytest.raises(ValueError, match="positive width"):
        encode_boxes(np.array([[0.2, 0.2, 0.2, 0.3]]), anchors, PRIORS.variances)


def brute_force_nms(boxes, scores, threshold):
    """Reference: walk candidates by score, keep one unless it overlaps a kept one too much."""
    kept = []
    for i in sorted(range(len(boxes)), key=lambda k: (-scores[k], k)):
        if all(iou_matrix(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= threshold for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 200) * 100
    scores = rng.uniform(size=200).round(2)  # rounding creates ties
    for threshold in (0.1, 0.4, 0.7):
        assert nms(boxes, scores, threshold).tolist() == brute_force_nms(boxes, scores, threshold)


def test_nms_of_nothing_is_empty():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.4).shape == (0,)


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    expected = [[1 / 7, 1.0, 0.0], [0.0, 0.25, 0.0]]
    assert iou_matrix(a, b) == pytest.approx(np.array(expected))


def test_decoding_no_candidates_gives_empty_arrays():
    anchors = np.zeros((0, 4), dtype=np.float32)
    assert decode_boxes(np.zeros((0, 4)), anchors, PRIORS.variances).shape == (0, 4)
    assert decode_landmarks(np.zeros((0, 10)), anchors, PRIORS.variances).shape == (0, 10)
