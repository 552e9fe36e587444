"""The detector node's parameters: one table of names, defaults, descriptions and ranges.

Declaring from a table keeps the node short and lets tests and the launch-file check compare
``config/mos.yaml`` against the names the node really declares. A parameter that sets a field
of a core configuration takes its default, description and range from that field
(:func:`mos_ros.core.validation.setting`) through :meth:`Spec.of`; only the node's own
parameters (model, backend, topics, drawing) are described here.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from mos_ros.core.markers import DEFAULT_HFOV_DEG, HFOV_LIMITS_DEG
from mos_ros.core.postprocess import DecodeSettings
from mos_ros.core.validation import describe
from mos_ros.detector import DEFAULT_INPUT_SIZE
from mos_ros.ros.health import HealthLimits
from mos_ros.ros.qos import AUTO, RELIABILITY

#: Accepted values of the ``input`` parameter.
INPUT_KINDS = ("raw", "compressed")
#: Bounds of the network input's long side, pixels.
INPUT_SIZE_RANGE = (32, 4096)
#: Head-axis arrow length bounds, metres.
MARKER_SCALE_RANGE = (0.001, 10.0)
DEFAULT_MARKER_SCALE = 0.15
#: Most inference threads that may be requested (0 = the backend's default).
MAX_THREADS = 256
#: Names of the parameters that map to :class:`DecodeSettings` fields.
DECODE_NAMES = tuple(f.name for f in fields(DecodeSettings))


@dataclass(frozen=True)
class Spec:
    """One declared parameter."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    limits: tuple[float, float] | None = None

    @classmethod
    def of(cls, config: type, field: str, name: str | None = None,
           read_only: bool = False) -> Spec:
        """The parameter that sets ``config.field`` (named ``name``, default the field's)."""
        default, description, offered = describe(config, field)
        return cls(name or field, default, description, read_only, offered)


#: The kind of image subscribed to (both nodes).
INPUT_SPEC = Spec("input", "raw", "Subscribe to 'image' (raw: sensor_msgs/Image) or "
                  "'image/compressed' (compressed: sensor_msgs/CompressedImage)", read_only=True)
#: The frame subscriptions' reliability (both nodes).
RELIABILITY_SPEC = Spec(
    "reliability", AUTO, "Reliability of the camera subscriptions: auto (follow the camera: "
    "reliable when all its publishers are), best_effort or reliable; the newest frame wins "
    "either way", read_only=True)

AUTOSTART_SPEC = Spec("autostart", True, "Configure and activate at start-up (else wait for "
                      "lifecycle transitions)", read_only=True)
#: When /diagnostics turns WARN (both nodes); 0 turns a check off.
HEALTH_SPECS = tuple(Spec.of(HealthLimits, field.name) for field in fields(HealthLimits))

SPECS = (
    Spec("model_path", "", "Model file (.onnx, .pt, .ncnn folder); empty: $MOS_MODEL or the "
         "shipped default model in the backend's form (onnxruntime: int8 on the CPU, fp32 "
         "for an accelerator device)",
         read_only=True),
    Spec("backend", "", "Inference backend (torch, onnxruntime, ncnn); empty: chosen by the "
         "model file's suffix", read_only=True),
    Spec("device", "", "Where inference runs: torch 'cpu'/'cuda'/'cuda:N', onnxruntime "
         "provider ('cpu', 'cuda', 'tensorrt'), ncnn 'vulkan'; empty: backend default",
         read_only=True),
    Spec("threads", 0, "CPU inference threads; 0: backend default", read_only=True,
         limits=(0, MAX_THREADS)),
    INPUT_SPEC,
    RELIABILITY_SPEC,
    AUTOSTART_SPEC,
    Spec("input_size", DEFAULT_INPUT_SIZE, "Long side of the network input, pixels (smaller is "
         "faster, finds fewer small faces)", limits=INPUT_SIZE_RANGE),
    *(Spec.of(DecodeSettings, name) for name in DECODE_NAMES),
    Spec("publish_annotated", False, "Publish 'faces/image' with boxes, landmarks and pose "
         "axes drawn"),
    Spec("marker_scale", DEFAULT_MARKER_SCALE, "Length of the head-axis arrows in "
         "'faces/markers', metres", limits=MARKER_SCALE_RANGE),
    Spec("default_hfov_deg", DEFAULT_HFOV_DEG, "Horizontal field of view assumed until "
         "'camera_info' brings a calibration, degrees", limits=HFOV_LIMITS_DEG),
) + HEALTH_SPECS


def descriptor(spec: Spec) -> ParameterDescriptor:
    """The ROS parameter descriptor of ``spec``: description, read-only flag and range."""
    result = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.limits is not None:
        low, high = spec.limits
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            result.integer_range = [IntegerRange(from_value=int(low), to_value=int(high),
                                                 step=1)]
        else:
            result.floating_point_range = [FloatingPointRange(
                from_value=float(low), to_value=float(high), step=0.0)]
    return result


def declare(node: Node, specs: tuple[Spec, ...] = SPECS) -> None:
    """Declare every parameter of ``specs`` (default: the detector's) on ``node``."""
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))


def decode_settings(current: dict[str, Any]) -> DecodeSettings:
    """DecodeSettings from parameter values; ValueError with the reasons when invalid."""
    return DecodeSettings(**{name: current[name] for name in DECODE_NAMES})


def problems(changes: list[Parameter], current: dict[str, Any]) -> list[str]:
    """Why ``changes`` cannot be applied on top of ``current`` (empty when they can).

    Threshold rules are :meth:`DecodeSettings.problems`, checked on the merged values.
    """
    merged = dict(current, **{p.name: p.value for p in changes})
    reasons = choice_problems(merged)
    reasons += DecodeSettings.problems_for(**{name: merged[name] for name in DECODE_NAMES})
    return reasons


#: Parameters with a fixed set of values (both nodes): name -> accepted values.
CHOICES = {"input": INPUT_KINDS, "reliability": tuple(RELIABILITY)}


def choice_problems(values: dict[str, Any]) -> list[str]:
    """Reasons the choice parameters among ``values`` are not one of their accepted values."""
    return [f"{name} must be one of {', '.join(accepted)} (got {values[name]})"
            for name, accepted in CHOICES.items()
            if name in values and values[name] not in accepted]
