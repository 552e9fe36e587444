"""Errors that carry a message a user can act on, raised instead of deep library tracebacks."""


class MosError(Exception):
    """Base class of every error mos_ros raises on purpose."""


class ImageError(MosError, ValueError):
    """An input image (file, array or message) cannot be used; the message says why."""


class ModelFileError(MosError, ValueError):
    """A model file is missing, truncated, of the wrong kind or lacks its metadata."""


class ExportError(MosError, RuntimeError):
    """Exporting a model failed, or the exported file does not reproduce the source model."""
