"""Best-shot selection: per tracked person, the face worth sending to recognition.

:class:`FaceSelector` ties the parts together for each frame: faces that cannot be assessed
are skipped with a counted reason; the rest are tracked (:mod:`mos_ros.core.tracking`); faces
that pass the cheap gates (pose, eye distance) are aligned and scored
(:mod:`mos_ros.core.quality`); :class:`BestShotSelector` keeps per track the best candidate and
emits it as a :class:`SelectedShot` once the track is confirmed, when it beats the last shot
emitted for that track by ``improvement_margin``, at most once per ``min_interval_s``. A better
shot that arrives within the interval waits and goes out when the interval has passed, and a
track that ends hands over its waiting shot, so the best shot of a short visit is not lost.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mos_ros.core.image_io import to_bgr
from mos_ros.core.quality import (QualityConfig, QualityResult, QualityTerms, assess,
                                  inter_eye_distance, validate_face)
from mos_ros.core.tracking import Track, Tracker, TrackerConfig
from mos_ros.core.types import Face
from mos_ros.core.validation import Rule, Validated, setting

_LOG = logging.getLogger(__name__)

#: Reasons a tracked face is not a candidate (also the keys of :attr:`FaceSelector.counts`).
GATE_YAW = "|yaw| above max_abs_yaw_deg"
GATE_PITCH = "|pitch| above max_abs_pitch_deg"
GATE_ROLL = "|roll| above max_abs_roll_deg"
GATE_EYES = "inter-eye distance below min_inter_eye_px"
GATE_SHARPNESS = "sharpness below min_sharpness"
GATE_QUALITY = "quality below min_quality"
#: Reason for a valid face that got no track because all ``max_tracks`` were in use.
NO_FREE_TRACK = "no free track (max_tracks reached)"


@dataclass(frozen=True)
class SelectorConfig(Validated):
    """Gates and emission rules of :class:`BestShotSelector`; all can change at run time."""

    max_abs_yaw_deg: float = setting(45.0, "Largest |yaw| of a face worth selecting, degrees "
                                     "(recognition degrades quickly beyond it)", (0.0, 90.0))
    max_abs_pitch_deg: float = setting(30.0, "Largest |pitch| of a face worth selecting, "
                                       "degrees", (0.0, 90.0))
    max_abs_roll_deg: float = setting(60.0, "Largest |roll| of a face worth selecting, degrees "
                                      "(alignment removes roll, but landmarks of strongly "
                                      "rolled faces are less reliable)", (0.0, 180.0))
    min_inter_eye_px: float = setting(12.0, "Smallest distance between the eyes of a face "
                                      "worth selecting, image pixels", (0.0, 10000.0))
    min_sharpness: float = setting(0.2, "Smallest sharpness term of a face worth selecting, "
                                   "[0, 1]", (0.0, 1.0))
    min_quality: float = setting(0.0, "Smallest total quality of a face worth selecting, "
                                 "[0, 1]", (0.0, 1.0))
    improvement_margin: float = setting(0.05, "Quality by which a new shot of a track must "
                                        "beat its last published one, [0, 1]", (0.0, 1.0))
    min_interval_s: float = setting(1.0, "Shortest time between two shots of one track, stamp "
                                    "seconds", (0.0, 3600.0))
    emit_on_track_end: bool = setting(True, "Publish the better shot still waiting for "
                                      "min_interval_s when its track ends")

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [
            ("max_abs_yaw_deg", 0.0 <= self.max_abs_yaw_deg <= 90.0, "in [0, 90]"),
            ("max_abs_pitch_deg", 0.0 <= self.max_abs_pitch_deg <= 90.0, "in [0, 90]"),
            ("max_abs_roll_deg", 0.0 <= self.max_abs_roll_deg <= 180.0, "in [0, 180]"),
            ("min_inter_eye_px", self.min_inter_eye_px >= 0.0, ">= 0"),
            ("min_sharpness", 0.0 <= self.min_sharpness <= 1.0, "in [0, 1]"),
            ("min_quality", 0.0 <= self.min_quality <= 1.0, "in [0, 1]"),
            ("improvement_margin", 0.0 <= self.improvement_margin <= 1.0, "in [0, 1]"),
            ("min_interval_s", self.min_interval_s >= 0.0, ">= 0"),
        ]


@dataclass(frozen=True)
class SelectedShot:
    """The best face of a track so far, ready for recognition.

    ``crop`` is the aligned BGR uint8 crop, ``matrix`` its 2x3 image-to-crop transform and
    ``stamp`` the time stamp (seconds) of the frame the face was seen in.
    """

    track_id: int
    face: Face
    terms: QualityTerms
    crop: np.ndarray
    matrix: np.ndarray
    stamp: float

    @property
    def quality(self) -> float:
        """Total quality of the shot in [0, 1]."""
        return self.terms.total


@dataclass(frozen=True)
class TrackedFace:
    """A face of the frame with its track.

    ``index`` is its position in the input faces; ``terms`` are None when a cheap gate
    rejected it before alignment; ``rejection`` says why it is not a candidate (or None).
    """

    index: int
    track_id: int
    confirmed: bool
    face: Face
    terms: QualityTerms | None
    rejection: str | None


@dataclass(frozen=True)
class SkippedFace:
    """An input face that was not tracked, and why."""

    index: int
    face: Face
    reason: str


@dataclass(frozen=True)
class SelectionResult:
    """What one frame produced: tracked faces, shots to publish and skipped faces."""

    tracked: tuple[TrackedFace, ...]
    selected: tuple[SelectedShot, ...]
    skipped: tuple[SkippedFace, ...]


class _ShotState:
    """Per-track selection state: the last emission and the better shot waiting to go out."""

    __slots__ = ("emitted_quality", "last_emit", "pending", "confirmed")

    def __init__(self) -> None:
        self.emitted_quality = -np.inf
        self.last_emit: float | None = None
        self.pending: SelectedShot | None = None
        self.confirmed = False


class BestShotSelector:
    """Keeps the best shot per track and decides when to emit it.

    Per frame: :meth:`gate` each tracked face, :meth:`offer` the assessed ones, then
    :meth:`collect` with all live tracks, which emits due shots and forgets ended tracks.
    """

    def __init__(self, config: SelectorConfig = SelectorConfig()) -> None:
        """Start with no per-track state."""
        self.config = config
        self._states: dict[int, _ShotState] = {}

    def __len__(self) -> int:
        """Return the number of tracks holding selection state."""
        return len(self._states)

    def gate(self, face: Face) -> str | None:
        """Reason why ``face`` is no candidate on pose or size alone, or None (cheap check)."""
        c = self.config
        checks = [
            (GATE_YAW, abs(face.pose.yaw) <= c.max_abs_yaw_deg),
            (GATE_PITCH, abs(face.pose.pitch) <= c.max_abs_pitch_deg),
            (GATE_ROLL, abs(face.pose.roll) <= c.max_abs_roll_deg),
            (GATE_EYES, inter_eye_distance(face.landmarks) >= c.min_inter_eye_px),
        ]
        return next((reason for reason, ok in checks if not ok), None)

    def offer(self, track: Track, quality: QualityResult, stamp: float) -> str | None:
        """Consider ``track``'s current face, assessed as ``quality``, as its best shot.

        Returns the reason when the face fails the sharpness or quality gate, else None
        (whether or not it beat the shot kept so far).
        """
        if quality.terms.sharpness < self.config.min_sharpness:
            return GATE_SHARPNESS
        if quality.terms.total < self.config.min_quality:
            return GATE_QUALITY
        state = self._states.setdefault(track.track_id, _ShotState())
        state.confirmed = state.confirmed or track.confirmed
        if self._beats(quality.terms.total, state):
            state.pending = SelectedShot(track.track_id, track.face, quality.terms, quality.crop,
                                         quality.matrix, float(stamp))
        return None

    def _beats(self, total: float, state: _ShotState) -> bool:
        """Whether a candidate of quality ``total`` should replace what the track keeps."""
        if state.pending is not None:
            return total > state.pending.quality
        return total > state.emitted_quality + self.config.improvement_margin

    def collect(self, live_tracks: Sequence[Track], stamp: float) -> list[SelectedShot]:
        """Shots due at ``stamp``; forgets tracks not in ``live_tracks`` (call every frame)."""
        live = {track.track_id: track for track in live_tracks}
        shots: list[SelectedShot] = []
        for track_id in list(self._states):
            state = self._states[track_id]
            track = live.get(track_id)
            if track is None:
                if state.confirmed and state.pending is not None and self.config.emit_on_track_end:
                    shots.append(state.pending)
                del self._states[track_id]
                continue
            state.confirmed = state.confirmed or track.confirmed
            if self._due(state, stamp):
                shots.append(self._emit(state, stamp))
        return shots

    def _due(self, state: _ShotState, stamp: float) -> bool:
        """Whether a waiting shot may go out: track confirmed and interval passed."""
        if state.pending is None or not state.confirmed:
            return False
        return state.last_emit is None or stamp - state.last_emit >= self.config.min_interval_s

    @staticmethod
    def _emit(state: _ShotState, stamp: float) -> SelectedShot:
        shot = state.pending
        state.emitted_quality = shot.quality
        state.last_emit = stamp
        state.pending = None
        return shot


class FaceSelector:
    """Validates, tracks, assesses and selects the faces of each frame.

    Every reason a face was skipped or gated is counted in :attr:`counts`.
    """

    def __init__(self, selector: SelectorConfig = SelectorConfig(),
                 quality: QualityConfig = QualityConfig(),
                 tracker: TrackerConfig = TrackerConfig()) -> None:
        """Build the tracker and best-shot selector from their configurations."""
        self.quality_config = quality
        self.tracker = Tracker(tracker)
        self.selector = BestShotSelector(selector)
        self._counts: Counter[str] = Counter()

    def configure(self, selector: SelectorConfig | None = None,
                  quality: QualityConfig | None = None,
                  tracker: TrackerConfig | None = None) -> None:
        """Replace configurations at run time; tracks and kept shots carry on."""
        if selector is not None:
            self.selector.config = selector
        if quality is not None:
            self.quality_config = quality
        if tracker is not None:
            self.tracker.config = tracker

    @property
    def counts(self) -> dict[str, int]:
        """How often each skip or gate reason occurred since start."""
        return dict(self._counts)

    def process(self, faces: Sequence[Face], image: np.ndarray, stamp: float) -> SelectionResult:
        """Handle the faces detected in ``image`` (BGR, or anything ``to_bgr`` accepts).

        ``stamp`` is the image's time stamp in seconds. Raises
        :class:`mos_ros.core.errors.ImageError` for an unusable image and ``ValueError`` for a
        non-finite stamp; bad faces never raise, they are skipped with a reason.
        """
        image = to_bgr(image)
        valid, skipped = self._validate(faces, image.shape)
        tracks = self.tracker.update([faces[i] for i in valid], stamp)
        tracked_indices = {valid[t.face_index] for t in tracks}
        for index in valid:
            if index not in tracked_indices:
                skipped.append(self._skip(index, faces[index], NO_FREE_TRACK))
        tracked = [self._consider(track, valid[track.face_index], image, stamp)
                   for track in tracks]
        shots = self.selector.collect(self.tracker.tracks, stamp)
        return SelectionResult(tuple(tracked), tuple(shots),
                               tuple(sorted(skipped, key=lambda s: s.index)))

    def _validate(self, faces: Sequence[Face],
                  shape: tuple[int, ...]) -> tuple[list[int], list[SkippedFace]]:
        """Split faces into usable indices and skipped faces with their reasons."""
        valid: list[int] = []
        skipped: list[SkippedFace] = []
        for index, face in enumerate(faces):
            reason = validate_face(face, shape)
            if reason is None:
                valid.append(index)
            else:
                skipped.append(self._skip(index, face, reason))
        return valid, skipped

    def _skip(self, index: int, face: Face, reason: str) -> SkippedFace:
        _LOG.debug("skipping face %d: %s", index, reason)
        self._counts[reason] += 1
        return SkippedFace(index, face, reason)

    def _consider(self, track: Track, index: int, image: np.ndarray,
                  stamp: float) -> TrackedFace:
        """Gate, assess and offer one tracked face."""
        terms = None
        reason = self.selector.gate(track.face)
        if reason is None:
            quality = assess(track.face, image, self.quality_config)
            terms = quality.terms
            reason = self.selector.offer(track, quality, stamp)
        if reason is not None:
            self._counts[reason] += 1
        return TrackedFace(index, track.track_id, track.confirmed, track.face, terms, reason)
