"""mos_ros: faces, five landmarks and head pose in one network pass, for ROS 2.

Layers, each usable without the one above it:
``mos_ros.core`` (numpy/OpenCV) <- ``mos_ros.model`` / ``mos_ros.backends`` <- ``mos_ros.ros``.
"""
from pkgutil import extend_path

# Generated message code (mos_ros.msg) is installed into the environment's site-packages
# under the same package name; extend the search path so both halves import as one package.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
