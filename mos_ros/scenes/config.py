"""What scenes look like: the settings of scenes (:class:`SceneConfig`) and of the
procedural faces and backgrounds in them (:class:`SyntheticConfig`)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from mos_ros.core.validation import Rule, Validated
from mos_ros.scenes.photometric import PhotometricConfig

#: Fields of both configs: what procedural faces and backgrounds are drawn from ...
_LOOK = ("width", "height", "face_px_range", "yaw_limit_deg", "pitch_limit_deg",
         "roll_limit_deg", "distance_range", "head_probability", "negatives_range",
         "clutter_range")
#: ... and how many faces a scene holds, their poses, placement and camera effects.
_LAYOUT = ("faces_range", "yaw_sigma_deg", "pitch_sigma_deg", "roll_sigma_deg",
           "frontal_fraction", "placement_tries", "augment_probability", "photometric")
#: SceneConfig fields that are probabilities or shares.
_SHARES = ("procedural_fraction", "scene_turn_probability", "scene_turn_wide_share",
           "hand_probability", "free_hand_probability", "max_outside", "head_probability")


@dataclass(frozen=True)
class SyntheticConfig(Validated):
    """What a procedural scene looks like (:meth:`SceneConfig.procedural_only` makes it the
    one composer's settings), and the look of procedural faces and backgrounds anywhere.

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
    """What a scene looks like; the one composer (:func:`mos_ros.scenes.composer.compose`)
    draws every random choice from these settings. Face size is the long side of the face box
    in pixels. A setting at 0 draws no random number, so adding one leaves older sets as they
    were. :meth:`procedural_only` gives the settings of procedural sets."""

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
    #: A photo face is drawn at most this many times its size in its photo (only bank faces
    #: large enough are drawn); a face no bank face can reach is procedural. 0: no limit.
    max_enlargement: float = 0.0
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
    #: A new face's head region (its box grown by ``head_margin`` face sizes, and by
    #: ``neck_margin`` below) may cover at most ``max_overlap`` of an earlier face box.
    max_overlap: float = 0.2
    head_margin: float = 0.3
    neck_margin: float = 0.3
    #: Tries to place a face before it is left out.
    placement_tries: int = 25
    #: Share of a placed face box that may lie outside the picture (0: wholly inside).
    max_outside: float = 0.4
    #: Labels of faces (after a scene turn, or in a cropped photo) less visible than this go.
    min_visible: float = 0.5
    #: Procedural faces and backgrounds: camera distance in face heights (perspective), share
    #: of faces with a head (hair, ears) around them, face-free distractors and clutter shapes
    #: per background.
    distance_range: tuple[float, float] = (2.5, 12.0)
    head_probability: float = 0.9
    negatives_range: tuple[int, int] = (0, 3)
    clutter_range: tuple[int, int] = (0, 40)
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
                 f"in [0, scene_turn_max_deg ({self.scene_turn_max_deg})], which is <= 180"),
                ("placement_tries", self.placement_tries >= 1, ">= 1"),
                ("max_enlargement", self.max_enlargement >= 0, ">= 0 (0: no limit)"),
                ("distance_range", 0 < self.distance_range[0] <= self.distance_range[1],
                 "positive and ordered")]

    @property
    def hands(self) -> HandConfig:
        """Settings of the hands drawn into these scenes."""
        return HandConfig(probability=self.hand_probability,
                          free_probability=self.free_hand_probability)

    @functools.cached_property
    def procedural(self) -> SyntheticConfig:
        """Settings of the procedural faces and backgrounds drawn into these scenes (made once:
        every procedural face asks for them)."""
        return SyntheticConfig(**{name: getattr(self, name) for name in _LOOK})

    @classmethod
    def procedural_only(cls, synthetic: SyntheticConfig) -> SceneConfig:
        """Scenes of procedural faces alone on procedural backgrounds, as ``synthetic``
        describes them: faces wholly inside the picture, head and neck clear of earlier
        faces, no crowds, empty scenes, occluders or turns."""
        return cls(**{name: getattr(synthetic, name) for name in _LOOK + _LAYOUT},
                   max_overlap=synthetic.max_occlusion, head_margin=0.6, neck_margin=1.1,
                   max_outside=0.0, crowd_probability=0.0, empty_probability=0.0,
                   photo_scene_probability=0.0, photo_background_probability=0.0,
                   procedural_fraction=1.0, tiny_fraction=0.0, occlusion_probability=0.0)
