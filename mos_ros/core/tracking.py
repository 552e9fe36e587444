"""Multi-face tracking by detection: stable integer ids across frames.

Each frame's faces are matched to the live tracks on a cost matrix: box overlap (IoU) with the
track's box predicted at the frame's time stamp (constant velocity), and, for small or fast
faces whose boxes no longer overlap, the centre distance relative to the face size. IoU matches
always cost less than distance matches, and pairs are taken greedily, cheapest first (a handful
of faces per frame makes an optimal assignment unnecessary).

A track starts tentative and is confirmed after ``min_hits`` consecutive matches; a tentative
track that misses a frame is dropped (most are false detections). A confirmed track survives
``max_misses`` frames without a match, or ``timeout_s`` seconds of stamp time, whichever
ends first. Ids grow monotonically and are never reused; removed tracks are forgotten, and at
most ``max_tracks`` are alive, so memory stays bounded on an endless stream.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mos_ros.core.nms import iou_matrix
from mos_ros.core.types import Face
from mos_ros.core.validation import Rule, Validated, setting

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackerConfig(Validated):
    """Association and life-cycle rules of :class:`Tracker`."""

    iou_threshold: float = setting(0.3, "Smallest box overlap (IoU) of a face with a track's "
                                   "predicted box to continue it, (0, 1]", (0.0, 1.0))
    max_centre_distance: float = setting(
        1.0, "Largest centre distance, in face sizes (sqrt of the predicted box area), for a "
        "distance match when boxes do not overlap enough; 0 disables the fall-back",
        (0.0, 100.0))
    min_hits: int = setting(3, "Consecutive detections that confirm a track (no shot before)",
                            (1, 10000))
    max_misses: int = setting(10, "Frames without its face after which a confirmed track "
                              "ends", (0, 10000))
    timeout_s: float = setting(2.0, "Stamp seconds without its face after which a track ends "
                               "(a stalled camera), > 0", (0.0, 3600.0))
    max_tracks: int = setting(64, "Most tracks alive at once; beyond it the stalest unmatched "
                              "track makes room", (1, 10000))
    velocity_smoothing: float = setting(0.5, "Weight of the newest velocity measurement in the "
                                        "smoothed velocity, [0, 1]", (0.0, 1.0))

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [
            ("iou_threshold", 0.0 < self.iou_threshold <= 1.0, "in (0, 1]"),
            ("max_centre_distance", self.max_centre_distance >= 0.0, ">= 0"),
            ("min_hits", self.min_hits >= 1, "at least 1"),
            ("max_misses", self.max_misses >= 0, ">= 0"),
            ("timeout_s", self.timeout_s > 0.0, "> 0"),
            ("max_tracks", self.max_tracks >= 1, "at least 1"),
            ("velocity_smoothing", 0.0 <= self.velocity_smoothing <= 1.0, "in [0, 1]"),
        ]


@dataclass(frozen=True)
class Track:
    """A snapshot of one track after an update.

    ``face`` is the last face matched; ``face_index`` its index in the faces of the latest
    update, or ``None`` when the track was not seen in that frame. Stamps are seconds.
    """

    track_id: int
    face: Face
    face_index: int | None
    hits: int
    misses: int
    confirmed: bool
    first_stamp: float
    last_stamp: float


class _TrackState:
    """Mutable per-track state, private to the tracker."""

    __slots__ = ("track_id", "face", "box", "velocity", "hits", "misses", "confirmed",
                 "first_stamp", "last_stamp", "face_index")

    def __init__(self, track_id: int, face: Face, index: int, stamp: float) -> None:
        self.track_id = track_id
        self.face = face
        self.box = np.asarray(face.box, dtype=np.float64)
        self.velocity = np.zeros(2)
        self.hits = 1
        self.misses = 0
        self.confirmed = False
        self.first_stamp = stamp
        self.last_stamp = stamp
        self.face_index: int | None = index

    def predicted_box(self, stamp: float) -> np.ndarray:
        """Box moved by the smoothed centre velocity to ``stamp``."""
        shift = self.velocity * max(stamp - self.last_stamp, 0.0)
        return self.box + np.tile(shift, 2)

    def snapshot(self) -> Track:
        """Frozen copy for callers."""
        return Track(self.track_id, self.face, self.face_index, self.hits, self.misses,
                     self.confirmed, self.first_stamp, self.last_stamp)


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def association_costs(track_boxes: np.ndarray, face_boxes: np.ndarray,
                      config: TrackerConfig) -> np.ndarray:
    """(T, F) matching costs; ``inf`` marks pairs that must not match.

    Overlap matches cost ``1 - IoU`` (in [0, 1)); centre-distance matches cost
    ``1 + d / max_centre_distance`` (in [1, 2]), so any overlap match is preferred.
    """
    track_boxes = np.asarray(track_boxes, dtype=np.float64).reshape(-1, 4)
    face_boxes = np.asarray(face_boxes, dtype=np.float64).reshape(-1, 4)
    costs = np.full((len(track_boxes), len(face_boxes)), np.inf)
    if costs.size == 0:
        return costs
    iou = iou_matrix(track_boxes, face_boxes)
    overlap = iou >= config.iou_threshold
    costs[overlap] = 1.0 - iou[overlap]
    if config.max_centre_distance > 0.0:
        sides = np.sqrt(np.prod(np.clip(track_boxes[:, 2:] - track_boxes[:, :2], 1.0, None),
                                axis=1))
        offsets = _centres(track_boxes)[:, None, :] - _centres(face_boxes)[None, :, :]
        distance = np.hypot(offsets[..., 0], offsets[..., 1]) / sides[:, None]
        near = ~overlap & (distance <= config.max_centre_distance)
        costs[near] = 1.0 + distance[near] / config.max_centre_distance
    return costs


def greedy_assignment(costs: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs taken cheapest first, each row and column at most once."""
    pairs: list[tuple[int, int]] = []
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for flat in np.argsort(costs, axis=None, kind="stable"):
        row, col = divmod(int(flat), costs.shape[1])
        if not np.isfinite(costs[row, col]):
            break
        if row not in used_rows and col not in used_cols:
            pairs.append((row, col))
            used_rows.add(row)
            used_cols.add(col)
    return pairs


class Tracker:
    """Gives each face a stable integer id across frames; see the module docstring."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        """Start with no tracks; the first id given out is 1."""
        self.config = config
        self._tracks: dict[int, _TrackState] = {}
        self._next_id = 1
        self._last_stamp: float | None = None
        #: Faces that got no track because ``max_tracks`` tracks were all seen this frame.
        self.dropped_faces = 0
        #: Times the stamps went backwards (a replayed bag, a reset clock) and tracks restarted.
        self.time_resets = 0

    @property
    def tracks(self) -> list[Track]:
        """Snapshots of all live tracks, oldest id first."""
        return [state.snapshot() for state in self._tracks.values()]

    def __len__(self) -> int:
        """Return the number of live tracks."""
        return len(self._tracks)

    def update(self, faces: Sequence[Face], stamp: float) -> list[Track]:
        """Match ``faces`` of the frame at ``stamp`` (seconds) to tracks.

        Returns the tracks seen in this frame, in the order of ``faces``; a face missing from
        the result got no track (see :attr:`dropped_faces`).
        """
        stamp = self._check_stamp(stamp)
        self._drop_timed_out(stamp)
        states = list(self._tracks.values())
        predicted = np.array([s.predicted_box(stamp) for s in states]).reshape(-1, 4)
        boxes = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
        pairs = greedy_assignment(association_costs(predicted, boxes, self.config))
        for state in states:
            state.face_index = None
        for row, col in pairs:
            self._match(states[row], faces[col], col, stamp)
        matched_ids = {states[row].track_id for row, _ in pairs}
        self._age_unmatched(matched_ids, stamp)
        matched_faces = {col for _, col in pairs}
        self._start_tracks(faces, [i for i in range(len(faces)) if i not in matched_faces], stamp)
        seen = [s for s in self._tracks.values() if s.face_index is not None]
        return [s.snapshot() for s in sorted(seen, key=lambda s: s.face_index)]

    def _check_stamp(self, stamp: float) -> float:
        """Validate the stamp; restart tracking when time runs backwards."""
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"time stamp must be finite, got {stamp}")
        if self._last_stamp is not None and stamp < self._last_stamp:
            _LOG.warning("time stamp went back from %.3f to %.3f s; restarting all tracks",
                         self._last_stamp, stamp)
            self._tracks.clear()
            self.time_resets += 1
        self._last_stamp = stamp
        return stamp

    def _drop_timed_out(self, stamp: float) -> None:
        """Remove tracks unseen for longer than the timeout before they can match again."""
        for track_id in [i for i, s in self._tracks.items()
                         if stamp - s.last_stamp > self.config.timeout_s]:
            del self._tracks[track_id]

    def _match(self, state: _TrackState, face: Face, index: int, stamp: float) -> None:
        """Update a track with its matched face and smooth its centre velocity."""
        box = np.asarray(face.box, dtype=np.float64)
        elapsed = stamp - state.last_stamp
        if elapsed > 0.0:
            measured = (_centres(box[None])[0] - _centres(state.box[None])[0]) / elapsed
            weight = 1.0 if state.hits == 1 else self.config.velocity_smoothing
            state.velocity = weight * measured + (1.0 - weight) * state.velocity
        state.face, state.box, state.face_index = face, box, index
        state.hits += 1
        state.misses = 0
        state.last_stamp = stamp
        state.confirmed = state.confirmed or state.hits >= self.config.min_hits

    def _age_unmatched(self, matched_ids: set[int], stamp: float) -> None:
        """Count a miss for each unmatched track; drop tentative ones and those too long unseen."""
        for track_id in [i for i in self._tracks if i not in matched_ids]:
            state = self._tracks[track_id]
            state.misses += 1
            if not state.confirmed or state.misses > self.config.max_misses:
                del self._tracks[track_id]

    def _start_tracks(self, faces: Sequence[Face], indices: list[int], stamp: float) -> None:
        """Open tentative tracks for unmatched faces, most confident first, within the cap."""
        for index in sorted(indices, key=lambda i: -faces[i].score):
            if len(self._tracks) >= self.config.max_tracks and not self._evict_stalest():
                self.dropped_faces += 1
                continue
            state = _TrackState(self._next_id, faces[index], index, stamp)
            state.confirmed = self.config.min_hits <= 1
            self._tracks[state.track_id] = state
            self._next_id += 1

    def _evict_stalest(self) -> bool:
        """Remove the unseen track with the most misses to make room; False if none."""
        unseen = [s for s in self._tracks.values() if s.face_index is None]
        if not unseen:
            return False
        stalest = max(unseen, key=lambda s: (s.misses, -s.last_stamp))
        del self._tracks[stalest.track_id]
        return True
