"""Pairing two streams by time stamp with bounded memory: each frame's faces with its image.

The detector publishes the faces of a frame after the frame itself, and drops frames when it
is busy, so most images never get faces and a frame's faces usually arrive after its image
(but over separate transports the order is not guaranteed). :class:`StampCache` keeps the
newest images in a ring and lets faces whose image has not arrived yet wait for a limited
time. Every faces entry ends either matched or dropped with a reason, and both caches have a
fixed size, so an endless stream with lost images never grows memory.

Stamps are integer nanoseconds (exact, hashable). :class:`StampSeconds` turns them into the
float seconds the tracker works in and back without losing a nanosecond.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from mos_ros.core.validation import Rule, Validated, setting

NS_PER_S = 1_000_000_000

#: Reasons a faces entry is dropped unmatched (keys of :attr:`StampCache.unmatched`).
IMAGE_NEVER_ARRIVED = "image never arrived"
IMAGE_EVICTED = "image left the cache before its faces arrived"
REPEATED_STAMP = "faces with a repeated stamp"
#: Stamps of images pushed out of the ring that are remembered, so that their late faces are
#: dropped at once with :data:`IMAGE_EVICTED` instead of waiting in vain.
EVICTED_STAMPS = 256


@dataclass(frozen=True)
class StampCacheConfig(Validated):
    """Sizes and waiting time of :class:`StampCache`; all can change at run time."""

    image_cache_size: int = setting(30, "Most images kept while they wait for their faces "
                                    "(each holds a full frame; the newest win)", (1, 10000))
    faces_cache_size: int = setting(10, "Most face arrays kept while they wait for their "
                                    "image", (1, 10000))
    faces_wait_s: float = setting(0.5, "Longest a face array waits for its image, seconds",
                                  (0.0, 60.0))

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [
            ("image_cache_size", self.image_cache_size >= 1, "at least 1"),
            ("faces_cache_size", self.faces_cache_size >= 1, "at least 1"),
            ("faces_wait_s", self.faces_wait_s >= 0.0, ">= 0"),
        ]


@dataclass(frozen=True)
class Match:
    """An image and the faces found in it, paired by ``stamp`` (nanoseconds)."""

    stamp: int
    image: Any
    faces: Any


@dataclass(frozen=True)
class Dropped:
    """A faces entry given up on, and why."""

    stamp: int
    faces: Any
    reason: str


class StampCache:
    """Pairs images and faces that carry the same stamp; see the module docstring.

    Thread-safe. Time for the waiting limit comes from an injectable clock (seconds).
    """

    def __init__(self, config: StampCacheConfig = StampCacheConfig(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Start empty."""
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._images: OrderedDict[int, Any] = OrderedDict()
        self._waiting: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        #: Stamps of the latest images pushed out of the ring unmatched.
        self._evicted: OrderedDict[int, None] = OrderedDict()
        #: Pairs made since start.
        self.matched = 0
        #: Images pushed out of the ring without faces (normal: the detector drops frames).
        self.images_unused = 0
        #: Faces entries dropped unmatched, by reason.
        self.unmatched: Counter[str] = Counter()

    @property
    def images(self) -> int:
        """Number of images waiting for their faces."""
        return len(self._images)

    @property
    def waiting(self) -> int:
        """Number of faces entries waiting for their image."""
        return len(self._waiting)

    def configure(self, config: StampCacheConfig) -> list[Dropped]:
        """Apply new limits now; returns the faces entries that no longer fit."""
        with self._lock:
            self.config = config
            self._trim_images()
            return self._trim_waiting(self._clock())

    def add_image(self, stamp: int, image: Any) -> tuple[Match | None, list[Dropped]]:
        """Offer an image: its pair when its faces wait, and the entries dropped meanwhile."""
        with self._lock:
            dropped = self._trim_waiting(self._clock())
            if stamp in self._waiting:
                _, faces = self._waiting.pop(stamp)
                return self._match(stamp, image, faces), dropped
            self._images.pop(stamp, None)
            self._images[stamp] = image
            self._trim_images()
            return None, dropped

    def add_faces(self, stamp: int, faces: Any) -> tuple[Match | None, list[Dropped]]:
        """Offer faces: their pair when the image is here, and the entries dropped meanwhile.

        Faces whose image is not here wait; faces whose image already left the ring are
        dropped at once (:data:`IMAGE_EVICTED`).
        """
        with self._lock:
            now = self._clock()
            dropped = self._trim_waiting(now)
            if stamp in self._images:
                return self._match(stamp, self._images.pop(stamp), faces), dropped
            if stamp in self._evicted:
                return None, dropped + [self._drop(stamp, faces, IMAGE_EVICTED)]
            if stamp in self._waiting:
                dropped.append(self._drop(stamp, self._waiting.pop(stamp)[1], REPEATED_STAMP))
            self._waiting[stamp] = (now + self.config.faces_wait_s, faces)
            return None, dropped + self._trim_waiting(now)

    def expire(self) -> list[Dropped]:
        """Drop the faces entries that waited too long (call now and then, e.g. on a timer)."""
        with self._lock:
            return self._trim_waiting(self._clock())

    def _match(self, stamp: int, image: Any, faces: Any) -> Match:
        self.matched += 1
        return Match(stamp, image, faces)

    def _drop(self, stamp: int, faces: Any, reason: str) -> Dropped:
        self.unmatched[reason] += 1
        return Dropped(stamp, faces, reason)

    def _trim_images(self) -> None:
        """Push the oldest images out of the ring until it fits, remembering their stamps."""
        while len(self._images) > self.config.image_cache_size:
            stamp, _ = self._images.popitem(last=False)
            self.images_unused += 1
            self._evicted[stamp] = None
        while len(self._evicted) > EVICTED_STAMPS:
            self._evicted.popitem(last=False)

    def _trim_waiting(self, now: float) -> list[Dropped]:
        """Drop waiting faces past their deadline, then the oldest beyond the cache size."""
        dropped = [self._drop(stamp, faces, IMAGE_NEVER_ARRIVED)
                   for stamp, (deadline, faces) in list(self._waiting.items()) if deadline < now]
        for entry in dropped:
            del self._waiting[entry.stamp]
        while len(self._waiting) > self.config.faces_cache_size:
            stamp, (_, faces) = self._waiting.popitem(last=False)
            dropped.append(self._drop(stamp, faces, IMAGE_NEVER_ARRIVED))
        return dropped


def stamp_ns(sec: int, nanosec: int) -> int:
    """A (sec, nanosec) time stamp as integer nanoseconds."""
    return int(sec) * NS_PER_S + int(nanosec)


class StampSeconds:
    """Integer-nanosecond stamps as float seconds since the first stamp seen, and back.

    Seconds since the epoch as a float64 lose the nanoseconds; relative to the first stamp
    they stay exact for 52 days (2**52 ns), so a stamp survives the round trip unchanged.
    """

    def __init__(self) -> None:
        """Start without an origin; the first stamp converted sets it."""
        self._origin_ns: int | None = None

    def seconds(self, stamp: int) -> float:
        """``stamp`` (nanoseconds) as seconds since the origin (negative when before it)."""
        if self._origin_ns is None:
            self._origin_ns = int(stamp)
        return (int(stamp) - self._origin_ns) / NS_PER_S

    def nanoseconds(self, seconds: float) -> int:
        """The stamp (nanoseconds) that :meth:`seconds` turned into ``seconds``."""
        return round(seconds * NS_PER_S) + (self._origin_ns or 0)
