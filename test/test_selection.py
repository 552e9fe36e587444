"""Specification of best-shot selection on generated face sequences."""
import math

import cv2
import numpy as np
import pytest

from mos_ros.core.errors import ImageError
from mos_ros.core.selection import (GATE_EYES, GATE_PITCH, GATE_SHARPNESS, GATE_YAW,
                                    NO_FREE_TRACK, FaceSelector, SelectorConfig)
from mos_ros.core.tracking import TrackerConfig
from mos_ros.core.types import Face, HeadPose

FPS = 30.0
#: Frontal landmark layout in units of the inter-eye distance, relative to the eye midpoint:
#: (x, y, depth towards the camera), in RetinaFace order.
FACE_POINTS = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.57, 0.6],
                        [-0.41, 1.16, 0.2], [0.41, 1.16, 0.2]])


def textured_image(height=360, width=480, seed=0):
    """A detailed scene (smoothed noise) so every aligned crop has texture to measure."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(128.0, 60.0, (height, width, 3)), (0, 0), 1.2)
    return np.clip(noise, 0, 255).astype(np.uint8)


SCENE = textured_image()
BLURRED = cv2.GaussianBlur(SCENE, (0, 0), 2.5)


def face(cx, cy, eye_px=40.0, yaw=0.0, pitch=0.0, roll=0.0, score=0.9):
    """A face whose landmarks follow its yaw, with the box around the head."""
    a = math.radians(yaw)
    x = FACE_POINTS[:, 0] * math.cos(a) - FACE_POINTS[:, 2] * math.sin(a)
    landmarks = np.stack([x, FACE_POINTS[:, 1]], axis=1) * eye_px + [cx, cy]
    box = (cx - eye_px, cy - 0.9 * eye_px, cx + eye_px, cy + 1.6 * eye_px)
    return Face(box=box, score=score, landmarks=landmarks.astype(np.float32),
                pose=HeadPose(yaw, pitch, roll))


def play(selector, frames, start=0):
    """Feed (faces, image) pairs at 30 fps; return all results."""
    return [selector.process(faces, image, (start + i) / FPS)
            for i, (faces, image) in enumerate(frames)]


def shots_of(results):
    return [shot for result in results for shot in result.selected]


def until_tracks_end(selector, start):
    """Empty frames until every track has been removed (its waiting shot goes out)."""
    frames = [([], SCENE)] * (selector.tracker.config.max_misses + 2)
    return play(selector, frames, start)


def test_a_face_turning_from_profile_to_frontal_is_selected_at_its_frontal_frame():
    yaws = list(np.linspace(85, 0, 18)) + list(np.linspace(5, 60, 12))
    selector = FaceSelector()
    results = play(selector, [([face(240, 150, yaw=y)], SCENE) for y in yaws])
    results += until_tracks_end(selector, len(yaws))
    shots = shots_of(results)
    frontal = yaws.index(0.0)
    assert shots[-1].face.pose.yaw == 0.0 and shots[-1].stamp == pytest.approx(frontal / FPS)
    assert all(abs(s.face.pose.yaw) <= selector.selector.config.max_abs_yaw_deg for s in shots)
    qualities = [s.quality for s in shots]
    margin = selector.selector.config.improvement_margin
    assert all(b > a + margin for a, b in zip(qualities, qualities[1:]))
    assert selector.counts[GATE_YAW] == sum(abs(y) > 45 for y in yaws)


def test_blurred_frames_lose_to_a_sharp_frame_of_the_same_pose():
    sharp_frames = {3, 8}
    frames = [([face(240, 150)], SCENE if i in sharp_frames else BLURRED) for i in range(12)]
    selector = FaceSelector(SelectorConfig(min_interval_s=0.0, min_sharpness=0.0))
    results = play(selector, frames) + until_tracks_end(selector, len(frames))
    shots = shots_of(results)
    assert shots[-1].stamp == pytest.approx(3 / FPS), "the first sharp frame is the best shot"
    blurred_terms = [t.terms for r in results[:3] for t in r.tracked]
    assert all(shots[-1].terms.sharpness > t.sharpness for t in blurred_terms)
    assert all(shots[-1].terms.pose == t.pose for t in blurred_terms)
    assert len(shots) == 2, "the second sharp frame is no improvement"


def test_no_shot_before_the_track_is_confirmed_and_false_detections_never_emit():
    selector = FaceSelector(tracker=TrackerConfig(min_hits=3))
    results = play(selector, [([face(240, 150)], SCENE)] * 3)
    assert [len(r.selected) for r in results] == [0, 0, 1]
    assert results[2].selected[0].track_id == results[0].tracked[0].track_id
    blip = FaceSelector(tracker=TrackerConfig(min_hits=3))
    results = play(blip, [([face(240, 150)], SCENE)] * 2 + [([], SCENE)] * 3)
    assert shots_of(results) == [] and len(blip.selector) == 0


def test_an_unchanging_face_is_emitted_once():
    selector = FaceSelector(SelectorConfig(min_interval_s=0.0))
    results = play(selector, [([face(240, 150)], SCENE)] * 60)
    assert len(shots_of(results)) == 1


def test_a_new_shot_must_beat_the_last_emitted_one_by_the_improvement_margin():
    selector = FaceSelector(SelectorConfig(min_interval_s=0.0, improvement_margin=0.05))
    yaws = [20.0, 20.0, 20.0, 18.0, 0.0]
    results = play(selector, [([face(240, 150, yaw=y)], SCENE) for y in yaws])
    totals = [r.tracked[0].terms.total for r in results]
    assert 0.0 < totals[3] - totals[2] < 0.05 < totals[4] - totals[2]
    assert [s.face.pose.yaw for s in shots_of(results)] == [20.0, 0.0]


def test_improving_shots_respect_the_minimum_interval_per_track():
    yaws = np.linspace(44, 0, 90)  # improves a little every frame for 3 seconds
    selector = FaceSelector(SelectorConfig(min_interval_s=1.0, improvement_margin=0.01))
    shots = shots_of(play(selector, [([face(240, 150, yaw=y)], SCENE) for y in yaws]))
    assert len(shots) >= 3
    emitted_at = [s.stamp for s in shots]
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(emitted_at, emitted_at[1:]))


def test_a_waiting_better_shot_goes_out_when_its_track_ends_unless_disabled():
    yaws = [30.0] * 5 + [0.0] + [30.0] * 4
    for on_end, expected in ((True, [30.0, 0.0]), (False, [30.0])):
        selector = FaceSelector(SelectorConfig(min_interval_s=5.0, emit_on_track_end=on_end))
        results = play(selector, [([face(240, 150, yaw=y)], SCENE) for y in yaws])
        results += until_tracks_end(selector, len(yaws))
        assert [s.face.pose.yaw for s in shots_of(results)] == expected
        assert len(selector.selector) == 0 and len(selector.tracker) == 0


def test_shots_carry_the_aligned_crop_and_the_track_id():
    selector = FaceSelector()
    results = play(selector, [([face(100, 100), face(350, 200, eye_px=50)], SCENE)] * 3)
    shots = results[-1].selected
    assert sorted(s.track_id for s in shots) == [1, 2]
    for shot in shots:
        assert shot.crop.shape == (112, 112, 3) and shot.crop.dtype == np.uint8
        assert shot.matrix.shape == (2, 3) and 0.0 < shot.quality <= 1.0


def test_gated_faces_are_tracked_but_not_candidates_and_the_reason_is_counted():
    selector = FaceSelector(SelectorConfig(min_sharpness=0.9))
    faces = [face(80, 80, yaw=70), face(200, 80, pitch=40), face(320, 80, eye_px=8),
             face(240, 220)]
    result = selector.process(faces, BLURRED, 0.0)
    rejections = [t.rejection for t in result.tracked]
    assert rejections == [GATE_YAW, GATE_PITCH, GATE_EYES, GATE_SHARPNESS]
    assert [t.terms is None for t in result.tracked] == [True, True, True, False]
    assert [t.index for t in result.tracked] == [0, 1, 2, 3]
    assert selector.counts == {GATE_YAW: 1, GATE_PITCH: 1, GATE_EYES: 1, GATE_SHARPNESS: 1}


def test_bad_faces_are_skipped_with_a_counted_reason_never_a_crash():
    good = face(240, 150)
    bad = [
        Face(good.box, good.score, good.landmarks, HeadPose(float("nan"), 0.0, 0.0)),
        Face((10.0, 10.0, 10.0, 50.0), good.score, good.landmarks, good.pose),
        Face(good.box, good.score, good.landmarks + [5000.0, 0.0], good.pose),
        Face(good.box, good.score, np.full((5, 2), np.inf, np.float32), good.pose),
    ]
    selector = FaceSelector()
    for i in range(5):
        result = selector.process([bad[0], good, bad[1], bad[2], bad[3]], SCENE, i / FPS)
        assert [t.index for t in result.tracked] == [1]
        assert [s.index for s in result.skipped] == [0, 2, 3, 4]
    reasons = [s.reason for s in result.skipped]
    for word, reason in zip(["pose", "zero-size", "outside", "NaN"], reasons):
        assert word in reason
    assert all(selector.counts[reason] == 5 for reason in reasons)
    assert len(shots_of([result])) == 0 and selector.tracker.tracks[0].confirmed


def test_unusable_images_and_stamps_raise_clear_errors():
    selector = FaceSelector()
    with pytest.raises(ImageError):
        selector.process([face(240, 150)], np.zeros((0, 10, 3), np.uint8), 0.0)
    with pytest.raises(ImageError):
        selector.process([face(240, 150)], "not an image", 0.0)
    with pytest.raises(ValueError, match="finite"):
        selector.process([face(240, 150)], SCENE, float("inf"))


def test_faces_beyond_the_track_cap_are_skipped_with_a_reason():
    selector = FaceSelector(tracker=TrackerConfig(max_tracks=2))
    result = selector.process([face(80, 80), face(240, 80), face(400, 80)], SCENE, 0.0)
    assert len(result.tracked) == 2 and [s.reason for s in result.skipped] == [NO_FREE_TRACK]
    assert selector.counts[NO_FREE_TRACK] == 1


def test_state_stays_bounded_over_a_long_sequence_with_people_coming_and_going():
    tracker_config = TrackerConfig(max_tracks=6, max_misses=5)
    selector = FaceSelector(SelectorConfig(min_interval_s=0.5), tracker=tracker_config)
    rng = np.random.default_rng(11)
    people = {}
    shots = empty_run = emptied = 0
    for frame in range(2000):
        if rng.random() < 0.03:
            people[frame] = (rng.uniform([60, 60], [420, 280]), rng.uniform(-60, 60))
        people = {k: p for k, p in people.items() if rng.random() > 0.03}
        faces = [face(*(centre + rng.normal(0, 1.0, 2)), eye_px=30, yaw=yaw + rng.normal(0, 3))
                 for centre, yaw in people.values()]
        result = selector.process(faces, SCENE, frame / FPS)
        shots += len(result.selected)
        assert len(selector.tracker) <= tracker_config.max_tracks
        assert len(selector.selector) <= len(selector.tracker)
        assert len(result.tracked) + len(result.skipped) == len(faces)
        empty_run = 0 if faces else empty_run + 1
        if empty_run > tracker_config.max_misses:
            assert len(selector.tracker) == 0 and len(selector.selector) == 0
            emptied += 1
    assert shots > 20 and emptied > 50
    assert set(selector.counts) <= {GATE_YAW, GATE_PITCH, GATE_EYES, GATE_SHARPNESS,
                                    NO_FREE_TRACK}


def test_configuration_changes_at_run_time_keep_the_tracks():
    selector = FaceSelector()
    play(selector, [([face(240, 150, yaw=30)], SCENE)] * 3)
    selector.configure(selector=SelectorConfig(max_abs_yaw_deg=20.0),
                       tracker=TrackerConfig(max_misses=1))
    result = selector.process([face(240, 150, yaw=30)], SCENE, 3 / FPS)
    assert result.tracked[0].track_id == 1 and result.tracked[0].rejection == GATE_YAW
    play(selector, [([], SCENE)] * 2, start=4)
    assert len(selector.tracker) == 0


def test_invalid_selector_config_names_the_field():
    assert SelectorConfig().problems() == []
    with pytest.raises(ValueError, match="max_abs_yaw_deg"):
        SelectorConfig(max_abs_yaw_deg=120.0)
    with pytest.raises(ValueError, match="min_interval_s"):
        SelectorConfig(min_interval_s=-1.0)
    with pytest.raises(ValueError, match="improvement_margin.*min_sharpness|min_sharpness"):
        SelectorConfig(min_sharpness=2.0, improvement_margin=-0.1)
