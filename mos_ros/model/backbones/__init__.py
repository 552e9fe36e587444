"""ImageNet backbones that feed the MOS feature pyramid, behind a small registry.

Each backbone keeps torchvision's ``state_dict`` key names, so torchvision ImageNet weights
(and the body of the public MOS checkpoints) load without renaming. A backbone follows
:class:`FeatureBackbone`: ``feature_maps(x)`` returns the maps at strides 8, 16 and 32 and
``feature_channels`` their channel counts. Built with ``with_classifier=False`` it omits the
layers after the last feature tap (the ImageNet classification tail), as the detector does.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

# Importing the backbone modules registers them.
from mos_ros.model.backbones import mobilenetv2, shufflenetv2  # noqa: F401
from mos_ros.model.backbones.registry import (  # noqa: F401 (the package's public names)
    BACKBONES, FEATURE_STRIDES, FeatureBackbone, build_backbone, register_backbone)
from mos_ros.model.serialization import as_tensor_dict, load_state_dict_strictly, read_torch_file


def load_imagenet_weights(backbone: nn.Module,
                          weights: str | Path | Mapping[str, Tensor]) -> nn.Module:
    """Load torchvision ImageNet weights (a local ``.pth`` or a state dict) into ``backbone``.

    A backbone built without its classifier ignores exactly the classifier's keys; every
    other key must match by name and shape (else :class:`ModelFileError`).
    """
    source = "state dict" if isinstance(weights, Mapping) else str(weights)
    raw = weights if isinstance(weights, Mapping) else read_torch_file(weights)
    state = as_tensor_dict(raw, source)
    own_keys = backbone.state_dict().keys()
    prefixes = tuple(getattr(backbone, "classifier_prefixes", ()))
    state = {key: value for key, value in state.items()
             if key in own_keys or not key.startswith(prefixes)}
    load_state_dict_strictly(backbone, state, source, hint="expected torchvision ImageNet weights")
    return backbone
