"""Inference backends behind one small protocol: torch, onnxruntime and ncnn.

``open_backend(name, model_path, **options)`` returns an object with ``infer(batch)`` that
gives :class:`~mos_ros.core.types.RawOutputs`. A backend's runtime (torch, onnxruntime, ncnn)
is imported only when that backend is opened.
"""
from mos_ros.backends.base import available_backends
from mos_ros.backends.base import device_options
from mos_ros.backends.base import InferenceBackend
from mos_ros.backends.base import open_backend
from mos_ros.backends.base import register_backend

__all__ = ["InferenceBackend", "available_backends", "device_options", "open_backend",
           "register_backend"]
