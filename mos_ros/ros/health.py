"""A node's health as one diagnostics level and message, without ROS.

ERROR: the node cannot work (its model failed to load, or it is not configured).
WARN: it works but something needs a look: no input for ``stale_input_s`` while active, a
sustained share of dropped frames above ``max_drop_share``, or a median latency above
``latency_budget_ms``. OK otherwise (an inactive node is OK: it was told to wait).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from mos_ros.core.validation import Rule, Validated, setting


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class HealthLimits(Validated):
    """When a working node is reported WARN; 0 turns a check off."""

    stale_input_s: float = setting(5.0, "WARN when no image came for this long while active, "
                                   "seconds", (0.0, 3600.0))
    max_drop_share: float = setting(0.5, "WARN when a larger share of the frames of the last "
                                    "seconds was dropped (the node was busy), [0, 1]",
                                    (0.0, 1.0))
    latency_budget_ms: float = setting(0.0, "WARN when the median processing latency exceeds "
                                       "this, milliseconds", (0.0, 60000.0))

    def rules(self) -> list[Rule]:
        """Allowed values of each field."""
        return [
            ("stale_input_s", self.stale_input_s >= 0.0, ">= 0"),
            ("max_drop_share", 0.0 <= self.max_drop_share <= 1.0, "in [0, 1]"),
            ("latency_budget_ms", self.latency_budget_ms >= 0.0, ">= 0"),
        ]


@dataclass(frozen=True)
class NodeState:
    """What the health is judged from."""

    configured: bool
    active: bool
    failure: str | None = None
    seconds_since_input: float | None = None
    drop_share: float = 0.0
    median_latency_ms: float | None = None
    #: A host setting that makes the node lose input it cannot count (see ros/dds.py).
    host_warning: str | None = None


def assess(state: NodeState, limits: HealthLimits) -> tuple[Level, str]:
    """The level and a one-line message for ``state`` (the worst finding wins)."""
    if state.failure:
        return Level.ERROR, state.failure
    if not state.configured:
        return Level.ERROR, "unconfigured"
    if not state.active:
        return Level.OK, "inactive"
    warnings = []
    since = state.seconds_since_input
    if limits.stale_input_s > 0 and (since is None or since > limits.stale_input_s):
        warnings.append("no input yet" if since is None
                        else f"no input for {since:.1f} s")
    if limits.max_drop_share > 0 and state.drop_share > limits.max_drop_share:
        warnings.append(f"dropping {100 * state.drop_share:.0f}% of frames")
    latency = state.median_latency_ms
    if limits.latency_budget_ms > 0 and latency is not None and latency > limits.latency_budget_ms:
        warnings.append(f"latency {latency:.0f} ms over the {limits.latency_budget_ms:g} ms "
                        "budget")
    if state.host_warning:
        warnings.append(state.host_warning)
    if warnings:
        return Level.WARN, "; ".join(warnings)
    return Level.OK, "ok"
