"""mos_ros: faces, five landmarks and head pose in one network pass, for ROS 2.

Layers, each usable without the one above it:
``mos_ros.core`` (numpy/OpenCV) <- ``mos_ros.model`` / ``mos_ros.backends`` <- ``mos_ros.ros``.
"""
import os
from pkgutil import extend_path

# Generated message code (mos_ros.msg) is installed into the environment's site-packages
# under the same package name; extend the search path so both halves import as one package.
__path__ = extend_path(__path__, __name__)

# onnxruntime looks up its telemetry host when it initialises unless this is set; a robot's
# detector has no business on the internet. Read once, so set before anything imports it; a
# user's own setting wins.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
