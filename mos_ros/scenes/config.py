"""What scenes look like: the settings of procedural and real-face scenes."""
from __future__ import annotations

from dataclasses import dataclass, field

from mos_ros.core.validation import Rule, Validated
from mos_ros.scenes.photometric import PhotometricConfig

#: SceneConfig fields that are probabilities or shares.
_SHARES = ("procedural_fraction", "scene_turn_probability", "scene_turn_wide_share",
           "hand_probability", "free_hand_probability")


@dataclass(frozen=True)
class SyntheticConfig(Validated):
    """What a synthetic scene looks like; every random choice is drawn from these ranges.

    Face size is the long side of the face box in pixels, drawn log-uniformly. Angles are drawn
    from a Gaussian around frontal with probability ``frontal_fraction``, else uniformly within
    the limits. ``distance_range`` is the camera distance in face heights (perspective).
    """

    width: int = 640
    height: int = 640
    faces_range: tuple[int, int] = (1, 8)
    face_px_range: tuple[float, float] = (12.0, 400.0)
    yaw_limit_deg: float = 90.0
    pitch_limit_deg: float = 45.0
    roll_limit_deg: float = 40.0
    frontal_fraction: float = 0.6
    yaw_sigma_deg: float = 25.0
    pitch_sigma_deg: float = 12.0
    roll_sigma_deg: float = 10.0
    distance_range: tuple[float, float] = (2.5, 12.0)
    max_occlusion: float = 0.15
    placement_tries: int = 30
    head_probability: float = 0.9
    negatives_range: tuple[int, int] = (0, 6)
    clutter_range: tuple[int, int] = (0, 40)
    augment_probability: float = 0.8
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)

    def rules(self) -> list[Rule]:
        """Ranges that can produce a scene."""
        low, high = self.face_px_range
        return [("width", self.width >= 16, ">= 16"), ("height", self.height >= 16, ">= 16"),
                ("face_px_range", 0 < low <= high <= min(self.width, self.height),
                 f"ordered and within (0, {min(self.width, self.height)}]"),
                ("faces_range", 0 <= self.faces_range[0] <= self.faces_range[1],
                 "ordered and >= 0"),
                ("distance_range", 0 < self.distance_range[0] <= self.distance_range[1],
                 "positive and ordered")]


@dataclass(frozen=True)
class HandConfig(Validated):
    """How often and how hands appear. Sizes are relative to the face box's long side."""

    #: Share of faces that get a hand (or an arm and a hand) beside them.
    probability: float = 0.3
    #: Share of those hands that come on a forearm reaching in from outside.
    arm_probability: float = 0.5
    #: Share of scenes with one hand drawn anywhere (waving, pointing).
    free_probability: float = 0.2
    #: Hand length (wrist to finger tips) over the face's long side.
    length_range: tuple[float, float] = (0.6, 1.1)
    #: Share of a hand's colour taken from the face's own skin (the rest: a stock tone).
    face_tone_probability: float = 0.8
    #: A hand may cover at most this share of the face box (the face stays a face).
    max_face_cover: float = 0.3

    def rules(self) -> list[Rule]:
        """Shares in [0, 1] and a positive, ordered length range."""
        low, high = self.length_range
        return [*((name, 0.0 <= getattr(self, name) <= 1.0, "in [0, 1]")
                  for name in ("probability", "arm_probability", "free_probability",
                               "face_tone_probability", "max_face_cover")),
                ("length_range", 0 < low <= high, "positive and ordered")]


@dataclass(frozen=True)
class SceneConfig(Validated):
    """What a scene looks like. Face size is the long side of the face box in pixels."""

    width: int = 448
    height: int = 448
    faces_range: tuple[int, int] = (1, 7)
    crowd_probability: float = 0.06
    crowd_range: tuple[int, int] = (10, 24)
    face_px_range: tuple[float, float] = (10.0, 380.0)
    empty_probability: float = 0.06
    photo_scene_probability: float = 0.12
    photo_background_probability: float = 0.6
    #: Size of a face-free photo relative to just filling the scene, drawn uniformly;
    #: below 1 the photo is mirrored around itself, so its objects appear small.
    background_zoom_range: tuple[float, float] = (1.0, 2.0)
    procedural_fraction: float = 0.3
    #: Faces smaller than ``tiny_face_px`` are a pasted small crop with this probability.
    tiny_fraction: float = 0.4
    tiny_face_px: float = 32.0
    occlusion_probability: float = 0.15
    max_turn_deg: float = 40.0
    yaw_limit_deg: float = 90.0
    yaw_sigma_deg: float = 30.0
    pitch_limit_deg: float = 40.0
    pitch_sigma_deg: float = 12.0
    roll_limit_deg: float = 40.0
    roll_sigma_deg: float = 10.0
    #: Share of angles drawn from the Gaussian about frontal (the rest uniform); real-face
    #: scenes draw all from the Gaussian, the turn of a photo face being limited anyway.
    frontal_fraction: float = 1.0
    #: The part of a photo face's turn about the optical axis is exempt from ``max_turn_deg``:
    #: spinning the shell in the image shows no texture the photo lacks.
    turn_in_plane_free: bool = False
    #: A photo face wanted more than this many degrees beyond its reach is drawn as a
    #: procedural face at the wanted pose instead (profiles, steep pitch); 0: never, clip.
    procedural_beyond_deg: float = 0.0
    #: Share of scenes turned as a whole, labels with them (:mod:`mos_ros.scenes.rotation`):
    #: uniformly within +-``scene_turn_deg``, a ``scene_turn_wide_share`` of them beyond, up
    #: to +-``scene_turn_max_deg``.
    scene_turn_probability: float = 0.0
    scene_turn_deg: float = 45.0
    scene_turn_max_deg: float = 90.0
    scene_turn_wide_share: float = 0.15
    #: Unlabelled hands (some on forearms) beside this share of faces, and one anywhere in this
    #: share of scenes (:mod:`mos_ros.scenes.hands`): hard negatives.
    hand_probability: float = 0.0
    free_hand_probability: float = 0.0
    max_overlap: float = 0.2
    min_visible: float = 0.5
    colour_match: float = 0.35
    augment_probability: float = 0.85
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)

    def rules(self) -> list[Rule]:
        """Ranges that can produce a scene."""
        low, high = self.face_px_range
        zoom_low, zoom_high = self.background_zoom_range
        turns = 0 <= self.scene_turn_deg <= self.scene_turn_max_deg <= 180
        return [("face_px_range", 0 < low <= high <= min(self.width, self.height),
                 f"ordered and fit the {self.width}x{self.height} scene"),
                ("background_zoom_range", 0 < zoom_low <= zoom_high, "positive and ordered"),
                *((name, 0 <= getattr(self, name) <= 1, "in [0, 1]") for name in _SHARES),
                ("scene_turn_deg", turns,
                 f"in [0, scene_turn_max_deg ({self.scene_turn_max_deg})], which is <= 180")]

    @property
    def hands(self) -> HandConfig:
        """Settings of the hands drawn into these scenes."""
        return HandConfig(probability=self.hand_probability,
                          free_probability=self.free_hand_probability)

    @property
    def procedural(self) -> SyntheticConfig:
        """Settings of the procedural faces and backgrounds drawn into these scenes."""
        return SyntheticConfig(width=self.width, height=self.height,
                               face_px_range=self.face_px_range,
                               yaw_limit_deg=self.yaw_limit_deg,
                               pitch_limit_deg=self.pitch_limit_deg,
                               roll_limit_deg=self.roll_limit_deg, negatives_range=(0, 3))
