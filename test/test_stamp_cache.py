"""Specification of the stamp cache that pairs each frame's faces with its image."""
import pytest

from mos_ros.core.stamp_cache import (EVICTED_STAMPS, IMAGE_EVICTED, IMAGE_NEVER_ARRIVED,
                                      NS_PER_S, REPEATED_STAMP, StampCache, StampCacheConfig,
                                      StampSeconds, stamp_ns)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def cache(clock, **config):
    return StampCache(StampCacheConfig(**config), clock=clock)


def test_faces_after_their_image_are_paired_at_once(clock):
    c = cache(clock)
    assert c.add_image(1, "image 1") == (None, [])
    assert c.add_image(2, "image 2") == (None, [])
    match, dropped = c.add_faces(1, "faces 1")
    assert (match.stamp, match.image, match.faces) == (1, "image 1", "faces 1")
    assert dropped == [] and c.matched == 1
    assert c.images == 1  # a paired image leaves the ring; image 2 still waits


def test_faces_before_their_image_wait_and_are_paired_when_it_comes(clock):
    c = cache(clock, faces_wait_s=0.5)
    assert c.add_faces(7, "faces 7") == (None, [])
    assert c.waiting == 1
    clock.now += 0.4
    match, dropped = c.add_image(7, "image 7")
    assert (match.image, match.faces) == ("image 7", "faces 7") and dropped == []
    assert c.waiting == 0 and c.images == 0


def test_faces_whose_image_never_arrives_expire_and_are_counted(clock):
    c = cache(clock, faces_wait_s=0.5)
    c.add_faces(3, "faces 3")
    clock.now += 0.4
    assert c.expire() == []
    clock.now += 0.2
    (dropped,) = c.expire()
    assert (dropped.stamp, dropped.faces, dropped.reason) == (3, "faces 3", IMAGE_NEVER_ARRIVED)
    assert c.waiting == 0 and c.unmatched == {IMAGE_NEVER_ARRIVED: 1}
    match, _ = c.add_image(3, "image 3")  # too late: the image just waits in the ring
    assert match is None and c.matched == 0


def test_expired_faces_are_also_reported_by_the_next_offer(clock):
    c = cache(clock, faces_wait_s=0.1)
    c.add_faces(1, "faces 1")
    clock.now += 1.0
    match, dropped = c.add_image(2, "image 2")
    assert match is None and [d.stamp for d in dropped] == [1]


def test_the_image_ring_keeps_the_newest_images_and_counts_the_unused(clock):
    c = cache(clock, image_cache_size=3)
    for stamp in range(10):
        c.add_image(stamp, f"image {stamp}")
    assert c.images == 3 and c.images_unused == 7
    match, _ = c.add_faces(9, "faces 9")
    assert match.image == "image 9"
    match, dropped = c.add_faces(2, "faces 2")  # its image was pushed out: no waiting
    assert match is None and [(d.stamp, d.reason) for d in dropped] == [(2, IMAGE_EVICTED)]
    assert c.waiting == 0


def test_waiting_faces_are_bounded_the_oldest_is_given_up_first(clock):
    c = cache(clock, faces_cache_size=4, faces_wait_s=60.0)
    dropped = []
    for stamp in range(10):
        dropped += c.add_faces(stamp, f"faces {stamp}")[1]
    assert c.waiting == 4
    assert [d.stamp for d in dropped] == [0, 1, 2, 3, 4, 5]
    assert {d.reason for d in dropped} == {IMAGE_NEVER_ARRIVED}
    assert c.add_image(9, "image 9")[0].faces == "faces 9"


def test_a_repeated_stamp_replaces_the_waiting_faces(clock):
    c = cache(clock)
    c.add_faces(5, "first")
    match, dropped = c.add_faces(5, "second")
    assert match is None and [(d.faces, d.reason) for d in dropped] == [("first", REPEATED_STAMP)]
    assert c.add_image(5, "image")[0].faces == "second"


def test_an_endless_stream_with_lost_images_stays_bounded(clock):
    """Every second image is lost; faces come for all of them. Nothing leaks."""
    c = cache(clock, image_cache_size=5, faces_cache_size=3, faces_wait_s=0.2)
    dropped = []
    for stamp in range(5000):
        clock.now += 1 / 30
        if stamp % 2 == 0:
            c.add_image(stamp, stamp)
        match, lost = c.add_faces(stamp, stamp)
        dropped += lost
        assert (match is not None) == (stamp % 2 == 0)
        assert c.images <= 5 and c.waiting <= 3 and len(c._evicted) <= EVICTED_STAMPS
    dropped += c.expire()
    clock.now += 1.0
    dropped += c.expire()
    assert c.matched == 2500 and c.waiting == 0
    assert len(dropped) == 2500 and c.unmatched == {IMAGE_NEVER_ARRIVED: 2500}


def test_smaller_limits_apply_at_once(clock):
    c = cache(clock, faces_wait_s=60.0)
    for stamp in range(8):
        c.add_image(100 + stamp, stamp)
        c.add_faces(stamp, stamp)
    dropped = c.configure(StampCacheConfig(image_cache_size=2, faces_cache_size=3))
    assert [d.stamp for d in dropped] == [0, 1, 2, 3, 4]
    assert c.images == 2 and c.waiting == 3


def test_invalid_config_names_the_field():
    with pytest.raises(ValueError, match="faces_wait_s must be >= 0"):
        StampCacheConfig(faces_wait_s=-1.0)
    bad = object.__new__(StampCacheConfig)
    object.__setattr__(bad, "image_cache_size", 0)
    object.__setattr__(bad, "faces_cache_size", 0)
    object.__setattr__(bad, "faces_wait_s", 0.5)
    assert bad.problems() == ["image_cache_size must be at least 1 (got 0)",
                              "faces_cache_size must be at least 1 (got 0)"]


def test_stamps_survive_the_trip_to_seconds_and_back_to_the_nanosecond():
    times = StampSeconds()
    first = stamp_ns(1_700_000_000, 123_456_789)
    assert first == 1_700_000_000 * NS_PER_S + 123_456_789
    assert times.seconds(first) == 0.0
    for offset_ns in (1, 33_333_333, -5_000_000_007, 3 * 86400 * NS_PER_S + 999_999_999):
        seconds = times.seconds(first + offset_ns)
        assert seconds == pytest.approx(offset_ns / NS_PER_S)
        assert times.nanoseconds(seconds) == first + offset_ns
