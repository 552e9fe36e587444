"""What every mos_ros node shares: a lifecycle node with declared parameters, validated
changes, frame subscriptions that follow the camera, and health on ``/diagnostics``.

A subclass gives its parameter specs, says what is wrong with a change (:meth:`problems`),
applies one (:meth:`apply`), and reports its own key/value pairs (:meth:`report`). The base
publishes diagnostics from construction on, so a node whose configuration failed says why
(ERROR) instead of falling silent.
"""
from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Header

from mos_ros.ros import convert, params
from mos_ros.ros.dds import discovery_range_warning, socket_buffer_warning
from mos_ros.ros.health import HealthLimits, NodeState, assess
from mos_ros.ros.qos import FrameSubscription
from mos_ros.ros.stats import FrameStats

DIAGNOSTICS_PERIOD_S = 1.0
OUTPUT_DEPTH = 10
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class MosNode(LifecycleNode):
    """Lifecycle node base: parameters, frame subscriptions, statistics and health."""

    #: What the node does, for its diagnostics status name (": face detection").
    TASK = ""

    def __init__(self, name: str, specs: tuple[params.Spec, ...], **kwargs) -> None:
        super().__init__(name, **kwargs)
        params.declare(self, specs)
        self.values: dict[str, Any] = {s.name: self.get_parameter(s.name).value for s in specs}
        self.stats = FrameStats()
        self.configured = self.active = False
        #: Why the last configuration failed (ERROR in diagnostics), None when it did not.
        self.failure: str | None = None
        self.frame_subscriptions: list[FrameSubscription] = []
        #: A host setting that loses frames before they reach the node: WARN in diagnostics.
        self.host_warning = socket_buffer_warning()
        for warning in (self.host_warning, discovery_range_warning()):
            if warning:
                self.get_logger().warning(warning)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics",
                                                  OUTPUT_DEPTH)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self.publish_diagnostics)
        self.add_on_set_parameters_callback(self._validate)
        # Humble has no post-set callbacks: changes are then applied in the on-set callback.
        self._post_set = hasattr(self, "add_post_set_parameters_callback")
        if self._post_set:
            self.add_post_set_parameters_callback(self._apply)

    def start(self) -> None:
        """Configure and activate when the ``autostart`` parameter says so."""
        if self.values.get("autostart") and self.trigger_configure() == SUCCESS:
            self.trigger_activate()

    # Lifecycle bookkeeping: subclasses call these through super().
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check every parameter; a failure names them (logs and diagnostics)."""
        reasons = self.problems([])
        if reasons:
            return self.fail(f"invalid parameters: {'; '.join(reasons)}")
        self.failure, self.configured = None, True
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Mark active (the subclass subscribes first)."""
        self.active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe from the frames."""
        self.active = False
        self.drop_frame_subscriptions()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Mark unconfigured."""
        self.configured = False
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, from whichever state."""
        self.active = self.configured = False
        self.drop_frame_subscriptions()
        return SUCCESS

    def fail(self, reason: str) -> TransitionCallbackReturn:
        """Log ``reason``, keep it for diagnostics and fail the transition."""
        self.failure = reason
        self.get_logger().error(reason)
        return FAILURE

    def subscribe_frames(self, msg_type, topic: str, callback, depth: int | None = None):
        """A frame subscription with the node's ``reliability`` (see :mod:`.qos`)."""
        extra = {} if depth is None else {"depth": depth}
        sub = FrameSubscription(self, msg_type, topic, callback, self.values["reliability"],
                                **extra)
        self.frame_subscriptions.append(sub)
        return sub

    def drop_frame_subscriptions(self) -> None:
        """Destroy every frame subscription."""
        for sub in self.frame_subscriptions:
            sub.destroy()
        self.frame_subscriptions = []

    # Parameters.
    def problems(self, changes: list) -> list[str]:
        """Why ``changes`` (on top of the current values) cannot be applied."""
        return params.choice_problems(dict(self.values, **{p.name: p.value for p in changes}))

    def apply(self, changes: list) -> None:
        """Take valid ``changes`` into use (the values are already updated)."""

    def _validate(self, changes) -> SetParametersResult:
        reasons = self.problems(changes)
        if not reasons and not self._post_set:
            self._apply(changes)
        return SetParametersResult(successful=not reasons, reason="; ".join(reasons))

    def _apply(self, changes) -> None:
        self.values.update({p.name: p.value for p in changes if p.name in self.values})
        self.apply(changes)

    # Health.
    def health_limits(self) -> HealthLimits:
        """The WARN limits (parameters where the node declares them)."""
        names = HealthLimits.__dataclass_fields__
        return HealthLimits(**{k: v for k, v in self.values.items() if k in names})

    def report(self) -> tuple[dict[str, str], str]:
        """The node's own diagnostics values and hardware id."""
        return dict(self.stats.summary()), ""

    def publish_diagnostics(self) -> None:
        """Follow the cameras' reliability, then publish level, message and values."""
        for sub in self.frame_subscriptions:
            sub.refresh()
        state = NodeState(configured=self.configured, active=self.active,
                          failure=self.failure,
                          seconds_since_input=self.stats.seconds_since_input(),
                          drop_share=self.stats.drop_share(),
                          median_latency_ms=self.stats.median_latency_ms(),
                          host_warning=self.host_warning)
        level, message = assess(state, self.health_limits())
        values, hardware_id = self.report()
        values["state"] = ("active" if self.active else "inactive" if self.configured
                           else "unconfigured")
        self._diagnostics.publish(convert.diagnostics(
            f"{self.get_fully_qualified_name()}: {self.TASK}", values, level, message,
            hardware_id, Header(stamp=self.get_clock().now().to_msg())))
