"""Core of mos_ros: numpy/OpenCV only, no torch and no ROS.

Anchors, box/landmark codec, NMS, pose conversions, pre/post-processing, drawing, and the
frozen dataclasses (:class:`Face`, :class:`HeadPose`) that travel between layers.
"""
from mos_ros.core.config import BGR_MEAN, ModelMeta, PoseBins, PriorConfig
from mos_ros.core.errors import ImageError, ModelFileError, MosError
from mos_ros.core.postprocess import DecodeSettings, decode_faces
from mos_ros.core.types import Face, HeadPose, RawOutputs

__all__ = ["BGR_MEAN", "DecodeSettings", "Face", "HeadPose", "ImageError", "ModelFileError",
           "ModelMeta", "MosError", "PoseBins", "PriorConfig", "RawOutputs", "decode_faces"]
