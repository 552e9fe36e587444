"""Procedural hands and forearms (mos_ros.scenes.hands): where they point, what they cover,
what colour they take, and that bad settings are refused by name."""
import numpy as np
import pytest

from mos_ros.scenes.config import HandConfig
from mos_ros.scenes.hands import covered_share, draw_hand, face_tone, free_hand, hand_near_face

TONE = np.array([90.0, 140.0, 200.0])


def _grey(height=240, width=240) -> np.ndarray:
    return np.full((height, width, 3), 60, np.uint8)


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask > 0.5)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("angle, direction", [(0, (0, -1)), (90, (1, 0)), (180, (0, 1)),
                                              (-90, (-1, 0))])
def test_a_hand_points_where_it_is_told_from_its_wrist(angle, direction):
    image = _grey()
    mask = draw_hand(image, np.random.default_rng(0), np.array([120.0, 120.0]), 60, angle, TONE)
    offset = _centroid(mask) - 120
    assert offset @ np.array(direction) > 15          # the hand lies beyond the wrist
    assert abs(offset @ np.array(direction)[::-1]) < 10
    drawn = image[mask > 0.9].astype(float)
    assert np.abs(drawn.mean(axis=0) - TONE).max() < 0.35 * TONE.max()   # skin, not grey


def test_a_forearm_reaches_back_from_the_wrist():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    hand = draw_hand(_grey(), rng_a, np.array([120.0, 100.0]), 50, 0, TONE)
    arm = draw_hand(_grey(), rng_b, np.array([120.0, 100.0]), 50, 0, TONE, arm=1.5)
    assert (arm > 0.5).sum() > 1.5 * (hand > 0.5).sum()
    assert np.nonzero(arm > 0.5)[0].max() > np.nonzero(hand > 0.5)[0].max() + 40   # lower


def test_face_tone_is_the_skin_in_the_middle_of_the_box():
    image = _grey()
    image[50:150, 50:130] = TONE.astype(np.uint8)
    image[50:70, 50:130] = 10                        # dark hair on top does not count
    assert face_tone(image, np.array([50, 50, 130, 150.0])) == pytest.approx(TONE)
    assert face_tone(image, np.array([300, 300, 340, 340.0])) is None


def test_hands_beside_a_face_leave_most_of_it_visible_and_take_its_skin():
    box = np.array([90, 60, 150, 140.0])
    config = HandConfig(probability=1.0, face_tone_probability=1.0)
    drawn = 0
    for seed in range(12):
        image = _grey(300, 300)
        image[60:140, 90:150] = TONE.astype(np.uint8)
        mask = hand_near_face(image, np.random.default_rng(seed), box, config)
        if mask is None:
            continue
        drawn += 1
        assert mask[60:140, 90:150].sum() <= config.max_face_cover * 60 * 80 + 1e-6
        assert mask.sum() > 100
        outside = image[(mask > 0.9)].astype(float).mean(axis=0)
        assert np.abs(outside - TONE).max() < 0.45 * TONE.max()
    assert drawn >= 10


def test_hands_are_a_pure_function_of_the_random_state():
    first, second = _grey(), _grey()
    free_hand(first, np.random.default_rng(5), 60, HandConfig())
    free_hand(second, np.random.default_rng(5), 60, HandConfig())
    assert np.array_equal(first, second) and not np.array_equal(first, _grey())


@pytest.mark.parametrize("field, value", [("probability", 1.5), ("max_face_cover", -0.1),
                                          ("length_range", (1.0, 0.5))])
def test_bad_settings_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        HandConfig(**{field: value})


def test_a_hand_spares_the_other_faces_in_the_scene():
    config = HandConfig(max_face_cover=0.05)
    others = [np.array([x, y, x + 40, y + 40.0]) for x in range(0, 240, 40)
              for y in range(0, 240, 40) if (x, y) != (80, 80)]
    for seed in range(6):
        image = _grey()
        mask = hand_near_face(image, np.random.default_rng(seed), np.array([80, 80, 120, 120.0]),
                              config, others)
        if mask is not None:
            assert all(covered_share(mask, box) <= 0.05 for box in others)
        else:
            assert np.array_equal(image, _grey())       # nothing drawn when it cannot fit
