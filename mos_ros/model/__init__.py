"""The MOS network in PyTorch: variants, checkpoints and the public reference weights.

Importing this package imports torch; :mod:`mos_ros.core` does not need it.
"""
from mos_ros.model.checkpoint import load_checkpoint, load_official_weights, save_checkpoint
from mos_ros.model.mos import MOS, VARIANTS, VariantConfig, build_model, register_variant

__all__ = [
    "MOS",
    "VARIANTS",
    "VariantConfig",
    "build_model",
    "load_checkpoint",
    "load_official_weights",
    "register_variant",
    "save_checkpoint",
]
