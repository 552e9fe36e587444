"""The backbone registry: what the detector needs of a backbone, and how one is found by name."""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from torch import Tensor, nn

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
