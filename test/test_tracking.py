"""Specification of face tracking: stable ids, life cycle and bounded memory."""
import numpy as np
import pytest

from mos_ros.core.tracking import (Tracker, TrackerConfig, association_costs,
                                   greedy_assignment)
from mos_ros.core.types import Face, HeadPose

FPS = 30.0


def face_at(cx, cy, size=60.0, score=0.9):
    """A face with a square box of ``size`` centred on (cx, cy) and plausible landmarks."""
    half = size / 2
    landmarks = np.array([[-0.2, -0.1], [0.2, -0.1], [0.0, 0.1], [-0.15, 0.3], [0.15, 0.3]])
    return Face(box=(cx - half, cy - half, cx + half, cy + half), score=score,
                landmarks=(landmarks * size + [cx, cy]).astype(np.float32),
                pose=HeadPose(0.0, 0.0, 0.0))


def run(tracker, frames, start=0):
    """Feed lists of faces at 30 fps; return, per frame, the track ids in face order."""
    return [[t.track_id for t in tracker.update(faces, (start + i) / FPS)]
            for i, faces in enumerate(frames)]


def test_a_steadily_moving_face_keeps_one_id_and_is_confirmed_after_min_hits():
    tracker = Tracker(TrackerConfig(min_hits=3))
    confirmed = []
    for i in range(20):
        (track,) = tracker.update([face_at(100 + 6 * i, 120)], i / FPS)
        confirmed.append(track.confirmed)
        assert track.track_id == 1 and track.face_index == 0 and track.hits == i + 1
    assert confirmed[:2] == [False, False] and all(confirmed[2:])


def test_two_faces_crossing_keep_their_ids():
    tracker = Tracker()
    frames = []
    for i in range(40):  # A walks right, B walks left; they pass each other around frame 20
        a = face_at(100 + 10 * i, 200)
        b = face_at(505 - 10 * i, 203)
        frames.append([a, b] if i % 2 else [b, a])  # the detector's order is arbitrary
    ids = run(tracker, frames)
    first_a, first_b = ids[0][1], ids[0][0]
    for i, frame_ids in enumerate(ids):
        a_id, b_id = (frame_ids[0], frame_ids[1]) if i % 2 else (frame_ids[1], frame_ids[0])
        assert (a_id, b_id) == (first_a, first_b), f"identity swap at frame {i}"
    assert {first_a, first_b} == {1, 2}


def test_a_face_hidden_behind_another_while_crossing_keeps_its_id():
    tracker = Tracker()
    frames = []
    for i in range(40):
        a, b = face_at(100 + 10 * i, 200), face_at(505 - 10 * i, 203)
        frames.append([a] if 17 <= i < 24 else [a, b])  # b passes behind a
    ids = run(tracker, frames)
    assert all(frame[0] == ids[0][0] for frame in ids)
    assert all(frame[1] == ids[0][1] for frame in ids if len(frame) == 2)


def test_a_face_hidden_for_a_few_frames_keeps_its_id():
    tracker = Tracker(TrackerConfig(max_misses=10))
    frames = [[face_at(100 + 5 * i, 100)] if not 10 <= i < 16 else [] for i in range(25)]
    ids = run(tracker, frames)
    assert {i for frame in ids for i in frame} == {1}


def test_a_face_leaving_and_a_new_one_entering_gets_a_new_id():
    tracker = Tracker(TrackerConfig(max_misses=5))
    first = [[face_at(100, 100)] for _ in range(10)]
    gap = [[] for _ in range(8)]
    second = [[face_at(400, 300)] for _ in range(10)]
    ids = run(tracker, first + gap + second)
    assert ids[0] == [1] and ids[-1] == [2]
    again = run(tracker, gap + [[face_at(100, 100)]], start=28)
    assert again[-1] == [3], "ids are never reused, even at the same place"


def test_a_tentative_track_that_misses_a_frame_is_dropped():
    tracker = Tracker(TrackerConfig(min_hits=3))
    run(tracker, [[face_at(100, 100)], []])
    assert len(tracker) == 0


def test_a_stalled_stream_times_out_tracks_by_stamp():
    tracker = Tracker(TrackerConfig(timeout_s=1.0, max_misses=100))
    run(tracker, [[face_at(100, 100)]] * 5)
    tracker.update([], 0.5)
    assert len(tracker) == 1
    (track,) = tracker.update([face_at(100, 100)], 3.0)
    assert track.track_id == 2 and not track.confirmed


def test_small_fast_faces_are_followed_by_centre_distance_when_boxes_do_not_overlap():
    frames = [[face_at(50 + 10 * i, 80, size=12)] for i in range(15)]
    assert {i for f in run(Tracker(), frames) for i in f} == {1}
    without = Tracker(TrackerConfig(max_centre_distance=0.0))
    assert len({i for f in run(without, frames) for i in f}) > 1


def test_overlap_matches_are_preferred_to_distance_matches():
    tracks = np.array([[0, 0, 20, 20], [100, 0, 120, 20]], dtype=float)
    faces = np.array([[12, 0, 32, 20], [2, 0, 22, 20]], dtype=float)
    costs = association_costs(tracks, faces, TrackerConfig())
    assert costs[0, 1] < 1.0 <= costs[0, 0] < np.inf
    assert np.isinf(costs[1]).all()
    assert greedy_assignment(costs) == [(0, 1)]


def test_the_track_cap_bounds_memory_and_counts_faces_left_without_track():
    tracker = Tracker(TrackerConfig(max_tracks=4))
    crowd = [face_at(70 * k + 40, 100, size=40) for k in range(6)]
    seen = tracker.update(crowd, 0.0)
    assert len(seen) == 4 and len(tracker) == 4 and tracker.dropped_faces == 2


def test_a_stale_track_makes_room_for_a_new_face_when_the_cap_is_reached():
    tracker = Tracker(TrackerConfig(max_tracks=2, min_hits=1, max_misses=50))
    run(tracker, [[face_at(100, 100), face_at(300, 100)]] * 3)
    seen = tracker.update([face_at(100, 100), face_at(500, 300)], 3 / FPS)
    assert [t.track_id for t in seen] == [1, 3] and len(tracker) == 2


def test_time_going_backwards_restarts_tracking_with_fresh_ids():
    tracker = Tracker()
    run(tracker, [[face_at(100, 100)]] * 5, start=100)
    (track,) = tracker.update([face_at(100, 100)], 1.0)
    assert track.track_id == 2 and tracker.time_resets == 1


def test_non_finite_stamps_are_refused():
    with pytest.raises(ValueError, match="finite"):
        Tracker().update([face_at(100, 100)], float("nan"))


def test_tracks_stay_bounded_over_a_long_sequence_with_faces_coming_and_going():
    config = TrackerConfig(max_tracks=8, max_misses=5)
    tracker = Tracker(config)
    rng = np.random.default_rng(7)
    people = {}
    largest_id = empty_run = emptied = 0
    for frame in range(2000):
        if rng.random() < 0.04:
            people[frame] = rng.uniform([50, 50], [590, 430])
        people = {k: p for k, p in people.items() if rng.random() > 0.015}
        faces = [face_at(*(p + rng.normal(0, 1.5, 2)), size=50) for p in people.values()]
        seen = tracker.update(faces, frame / FPS)
        assert len(tracker) <= config.max_tracks
        assert len(seen) <= len(faces)
        for new in (t for t in seen if t.hits == 1):
            assert new.track_id > largest_id, "a new track must get a never used id"
            largest_id = new.track_id
        empty_run = 0 if faces else empty_run + 1
        if empty_run > config.max_misses:
            assert len(tracker) == 0, "tracks of people who left must be removed"
            emptied += 1
    assert largest_id > 50, "the sequence should have created many tracks"
    assert emptied > 20, "the sequence should have had empty stretches"


def test_invalid_tracker_config_names_the_field():
    assert TrackerConfig().problems() == []
    with pytest.raises(ValueError, match="min_hits"):
        TrackerConfig(min_hits=0)
    with pytest.raises(ValueError, match="iou_threshold"):
        TrackerConfig(iou_threshold=1.5)
    with pytest.raises(ValueError, match="max_tracks"):
        TrackerConfig(max_tracks=0)
