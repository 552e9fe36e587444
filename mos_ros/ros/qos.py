"""QoS of the camera subscriptions: newest frame only, reliability matched to the camera.

A best-effort subscription to a reliable camera gets no repair of lost fragments, and a large
frame is lost with any one of its fragments; a reliable subscription to a best-effort camera
gets nothing at all. ``reliability: auto`` (the default) therefore follows the publishers on
the topic: reliable when every one of them is reliable, best effort otherwise (it matches
both), re-checked as cameras come and go. Keep last, depth 2: the callback only hands the
frame on (the node's worker takes the newest and counts the ones it displaces), and the second
slot keeps a frame that arrives during a callback from being discarded uncounted.
"""
from __future__ import annotations

from typing import Iterable

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

AUTO = "auto"
#: Values of the ``reliability`` parameter -> policy (None: follow the publishers).
RELIABILITY = {AUTO: None, "best_effort": ReliabilityPolicy.BEST_EFFORT,
               "reliable": ReliabilityPolicy.RELIABLE}
FRAME_DEPTH = 2


def matching_reliability(publisher_reliabilities: Iterable[ReliabilityPolicy]
                         ) -> ReliabilityPolicy:
    """Reliable when there are publishers and all are reliable, else best effort."""
    policies = list(publisher_reliabilities)
    if policies and all(p == ReliabilityPolicy.RELIABLE for p in policies):
        return ReliabilityPolicy.RELIABLE
    return ReliabilityPolicy.BEST_EFFORT


def frame_qos(reliability: ReliabilityPolicy, depth: int = FRAME_DEPTH) -> QoSProfile:
    """Keep the newest ``depth`` frames (default: only the newest), with ``reliability``."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=reliability, durability=DurabilityPolicy.VOLATILE)


def subscription_reliability(node, topic: str, setting: str) -> ReliabilityPolicy:
    """The reliability a frame subscription to ``topic`` should use under ``setting``."""
    fixed = RELIABILITY[setting]
    if fixed is not None:
        return fixed
    resolved = node.resolve_topic_name(topic)
    infos = node.get_publishers_info_by_topic(resolved)
    return matching_reliability(info.qos_profile.reliability for info in infos)


class FrameSubscription:
    """A newest-frame subscription whose reliability follows ``setting`` (see module doc).

    :meth:`refresh` (called periodically by the node) re-creates the subscription when the
    publishers on the topic call for the other reliability.
    """

    def __init__(self, node, msg_type, topic: str, callback, setting: str = AUTO,
                 depth: int = FRAME_DEPTH) -> None:
        if setting not in RELIABILITY:
            raise ValueError(f"reliability must be one of {', '.join(RELIABILITY)}, "
                             f"got '{setting}'")
        self._node, self._type, self.topic = node, msg_type, topic
        self._callback, self._setting, self._depth = callback, setting, depth
        self.reliability: ReliabilityPolicy | None = None
        self.subscription = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-create the subscription if the wanted reliability changed; True if it did."""
        wanted = subscription_reliability(self._node, self.topic, self._setting)
        if wanted == self.reliability:
            return False
        self.destroy()
        self.subscription = self._node.create_subscription(
            self._type, self.topic, self._callback, frame_qos(wanted, self._depth))
        self.reliability = wanted
        return True

    def destroy(self) -> None:
        """Remove the subscription (no-op when there is none)."""
        if self.subscription is not None:
            self._node.destroy_subscription(self.subscription)
        self.subscription, self.reliability = None, None
