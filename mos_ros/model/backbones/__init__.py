"""ImageNet backbones that feed the MOS feature pyramid, behind a small registry.

Each backbone keeps torchvision's ``state_dict`` key names, so torchvision ImageNet weights
(and the body of the public MOS checkpoints) load without renaming. A backbone follows
:class:`FeatureBackbone`: ``feature_maps(x)`` returns the maps at strides 8, 16 and 32 and
``feature_channels`` their channel counts. Built with ``with_classifier=False`` it omits the
layers after the last feature tap (the ImageNet classification tail), as the detector does.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from torch import Tensor, nn

from mos_ros.model.serialization import as_tensor_dict, load_state_dict_strictly, read_torch_file

#: Output strides of the three feature maps every backbone returns, finest first.
FEATURE_STRIDES: tuple[int, int, int] = (8, 16, 32)


class FeatureBackbone(Protocol):
    """What the detector needs from a backbone."""

    #: Channels of the stride 8, 16 and 32 maps.
    feature_channels: tuple[int, int, int]
    #: Key prefixes of the classification tail, absent when built without the classifier.
    classifier_prefixes: tuple[str, ...]

    def feature_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return the feature maps at strides 8, 16 and 32."""


BackboneFactory = Callable[..., nn.Module]

#: Backbone name (torchvision's model name) -> factory taking ``with_classifier``.
BACKBONES: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Register a backbone factory under ``name`` (decorator)."""
    def decorator(factory: BackboneFactory) -> BackboneFactory:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered")
        BACKBONES[name] = factory
        return factory
    return decorator


def build_backbone(name: str, *, with_classifier: bool = False) -> nn.Module:
    """Build a registered backbone; ValueError lists the known names for an unknown one."""
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}") from None
    return factory(with_classifier=with_classifier)


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


# Importing the modules registers their backbones.
from mos_ros.model.backbones import mobilenetv2, shufflenetv2  # noqa: E402,F401
