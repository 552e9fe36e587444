"""The face_selector node's parameters: one table, mapped onto the core configurations.

Each parameter sets one field of :class:`SelectorConfig`, :class:`TrackerConfig`,
:class:`QualityConfig` or :class:`StampCacheConfig` (``input`` excepted); the rules that
reject a value are those configurations' ``problems()``, reported under the parameter's name.
"""
from __future__ import annotations

from typing import Any

from rclpy.parameter import Parameter

from mos_ros.core.quality import QualityConfig
from mos_ros.core.selection import SelectorConfig
from mos_ros.core.stamp_cache import StampCacheConfig
from mos_ros.core.tracking import TrackerConfig
from mos_ros.ros.params import (AUTOSTART_SPEC, HEALTH_SPECS, RELIABILITY_SPEC, Spec,
                                choice_problems)

#: The configurations the parameters set, by group name.
CONFIGS = {"selector": SelectorConfig, "tracker": TrackerConfig, "quality": QualityConfig,
           "cache": StampCacheConfig}
#: Upper bounds offered in the descriptors (the core rules are the real limits).
MAX_PIXELS = 10000.0
MAX_SECONDS = 3600.0
MAX_COUNT = 10000
_S, _T, _Q, _C = (cls() for cls in CONFIGS.values())

#: (spec, group, field): the parameter and the configuration field it sets.
TABLE = (
    (Spec("max_abs_yaw_deg", _S.max_abs_yaw_deg, "Largest |yaw| of a face worth "
          "selecting, degrees", limits=(0.0, 90.0)), "selector", "max_abs_yaw_deg"),
    (Spec("max_abs_pitch_deg", _S.max_abs_pitch_deg, "Largest |pitch| of a face worth "
          "selecting, degrees", limits=(0.0, 90.0)), "selector", "max_abs_pitch_deg"),
    (Spec("max_abs_roll_deg", _S.max_abs_roll_deg, "Largest |roll| of a face worth "
          "selecting, degrees", limits=(0.0, 180.0)), "selector", "max_abs_roll_deg"),
    (Spec("min_inter_eye_px", _S.min_inter_eye_px, "Smallest distance between the eyes of a "
          "face worth selecting, image pixels", limits=(0.0, MAX_PIXELS)), "selector",
     "min_inter_eye_px"),
    (Spec("min_sharpness", _S.min_sharpness, "Smallest sharpness term of a face worth "
          "selecting, [0, 1]", limits=(0.0, 1.0)), "selector", "min_sharpness"),
    (Spec("min_quality", _S.min_quality, "Smallest total quality of a face worth selecting, "
          "[0, 1]", limits=(0.0, 1.0)), "selector", "min_quality"),
    (Spec("improvement_margin", _S.improvement_margin, "Quality by which a new shot of a "
          "track must beat its last published one, [0, 1]", limits=(0.0, 1.0)), "selector",
     "improvement_margin"),
    (Spec("min_interval_s", _S.min_interval_s, "Shortest time between two shots of one track, "
          "stamp seconds", limits=(0.0, MAX_SECONDS)), "selector", "min_interval_s"),
    (Spec("emit_on_track_end", _S.emit_on_track_end, "Publish the better shot still waiting "
          "for min_interval_s when its track ends"), "selector", "emit_on_track_end"),
    (Spec("min_hits", _T.min_hits, "Consecutive detections that confirm a track (no shot "
          "before)", limits=(1, MAX_COUNT)), "tracker", "min_hits"),
    (Spec("max_misses", _T.max_misses, "Frames without its face after which a track ends",
          limits=(0, MAX_COUNT)), "tracker", "max_misses"),
    (Spec("track_timeout_s", _T.timeout_s, "Stamp seconds without its face after which a "
          "track ends, > 0", limits=(0.0, MAX_SECONDS)), "tracker", "timeout_s"),
    (Spec("iou_threshold", _T.iou_threshold, "Smallest box overlap (IoU) of a face with a "
          "track's predicted box to continue it, (0, 1]", limits=(0.0, 1.0)), "tracker",
     "iou_threshold"),
    (Spec("max_tracks", _T.max_tracks, "Most tracks alive at once", limits=(1, MAX_COUNT)),
     "tracker", "max_tracks"),
    (Spec("size_centre_px", _Q.size_centre_px, "Inter-eye distance at which the size term is "
          "0.5, image pixels", limits=(0.0, MAX_PIXELS)), "quality", "size_centre_px"),
    (Spec("sharpness_half_variance", _Q.sharpness_half_variance, "Laplacian variance of the "
          "aligned crop at which the sharpness term is 0.5, > 0", limits=(0.0, 1e6)),
     "quality", "sharpness_half_variance"),
    (Spec("image_cache_size", _C.image_cache_size, "Most images kept while they wait for "
          "their faces (each holds a full frame)", limits=(1, MAX_COUNT)), "cache",
     "image_cache_size"),
    (Spec("faces_cache_size", _C.faces_cache_size, "Most face arrays kept while they wait for "
          "their image", limits=(1, MAX_COUNT)), "cache", "faces_cache_size"),
    (Spec("faces_wait_s", _C.faces_wait_s, "Longest a face array waits for its image, "
          "seconds", limits=(0.0, 60.0)), "cache", "faces_wait_s"),
)
INPUT = Spec("input", "raw", "Subscribe to 'image' (raw: sensor_msgs/Image) or "
             "'image/compressed' (compressed: sensor_msgs/CompressedImage)", read_only=True)
SPECS = ((INPUT, RELIABILITY_SPEC, AUTOSTART_SPEC) + tuple(spec for spec, _, _ in TABLE)
         + HEALTH_SPECS)


def _by_group(current: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Parameter values as configuration fields, by group name."""
    groups: dict[str, dict[str, Any]] = {group: {} for group in CONFIGS}
    for spec, group, field in TABLE:
        groups[group][field] = current[spec.name]
    return groups


def configs(current: dict[str, Any]) -> dict[str, Any]:
    """The configurations, by group name, from parameter values; ValueError when invalid."""
    reasons = problems([], current)
    if reasons:
        raise ValueError("; ".join(reasons))
    return {group: CONFIGS[group](**settings) for group, settings in _by_group(current).items()}


def problems(changes: list[Parameter], current: dict[str, Any]) -> list[str]:
    """Why ``changes`` cannot be applied on top of ``current`` (empty when they can)."""
    merged = dict(current, **{p.name: p.value for p in changes})
    reasons = choice_problems(merged)
    names = {(group, field): spec.name for spec, group, field in TABLE}
    for group, settings in _by_group(merged).items():
        for reason in CONFIGS[group].problems_for(**settings):
            field = reason.split(" ", 1)[0]
            reasons.append(reason.replace(field, names.get((group, field), field), 1))
    return reasons
