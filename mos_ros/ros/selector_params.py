"""The face_selector node's parameters: one table, mapped onto the core configurations.

Each parameter sets one field of :class:`SelectorConfig`, :class:`TrackerConfig`,
:class:`QualityConfig`, :class:`StampCacheConfig` or :class:`HriConfig` (``input``,
``reliability`` and ``autostart`` excepted); the rules that
reject a value are those configurations' ``problems()``, reported under the parameter's name.
"""
from __future__ import annotations

from typing import Any

from rclpy.parameter import Parameter

from mos_ros.core.hri import HriConfig
from mos_ros.core.quality import QualityConfig
from mos_ros.core.selection import SelectorConfig
from mos_ros.core.stamp_cache import StampCacheConfig
from mos_ros.core.tracking import TrackerConfig
from mos_ros.ros.params import (AUTOSTART_SPEC, HEALTH_SPECS, INPUT_SPEC, RELIABILITY_SPEC,
                                Spec, choice_problems)

#: The configurations the parameters set, by group name.
CONFIGS = {"selector": SelectorConfig, "tracker": TrackerConfig, "quality": QualityConfig,
           "cache": StampCacheConfig, "hri": HriConfig}
#: The configuration fields users may set, by group, in declaration order.
EXPOSED = {
    "selector": ("max_abs_yaw_deg", "max_abs_pitch_deg", "max_abs_roll_deg", "min_inter_eye_px",
                 "min_sharpness", "min_quality", "improvement_margin", "min_interval_s",
                 "emit_on_track_end"),
    "tracker": ("min_hits", "max_misses", "timeout_s", "iou_threshold", "max_tracks"),
    "quality": ("size_centre_px", "sharpness_half_variance"),
    "cache": ("image_cache_size", "faces_cache_size", "faces_wait_s"),
    "hri": ("enabled", "face_width", "face_height"),
}
#: Parameters named apart from their field, where the field name alone would be unclear.
RENAMED = {("tracker", "timeout_s"): "track_timeout_s", ("hri", "enabled"): "ros4hri",
           ("hri", "face_width"): "ros4hri_face_width",
           ("hri", "face_height"): "ros4hri_face_height"}

#: (spec, group, field): the parameter and the configuration field it sets.
TABLE = tuple((Spec.of(CONFIGS[group], field, RENAMED.get((group, field))), group, field)
              for group, names in EXPOSED.items() for field in names)
SPECS = ((INPUT_SPEC, RELIABILITY_SPEC, AUTOSTART_SPEC) + tuple(spec for spec, _, _ in TABLE)
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
