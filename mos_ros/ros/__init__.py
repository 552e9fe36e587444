"""The ROS 2 layer: message conversion and the nodes (mos_detector, image source, bringup).

Nodes only convert messages to arrays and back and call :mod:`mos_ros.core` and
:class:`mos_ros.detector.FaceDetector`; they hold no math.
"""
