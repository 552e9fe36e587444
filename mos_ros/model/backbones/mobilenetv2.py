"""MobileNetV2 (Sandler et al., 2018) with torchvision's module layout and key names.

Feature taps for the detector (the MOS-M reference layout): the outputs of ``features[6]``
(32 channels, stride 8), ``features[13]`` (96 channels, stride 16) and ``features[17]``
(320 channels, stride 32). ``features[18]`` (the 1x1 conv to 1280 channels) and
``classifier`` form the ImageNet classification tail.
"""
from __future__ import annotations

from torch import Tensor, nn

from mos_ros.model.backbones.registry import register_backbone

STEM_CHANNELS = 32
LAST_CHANNELS = 1280
IMAGENET_CLASSES = 1000
DROPOUT = 0.2

#: Inverted residual settings: (expansion t, output channels c, repeats n, first stride s).
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

#: Indices into ``features`` whose outputs are the stride 8, 16 and 32 maps.
FEATURE_TAPS: tuple[int, int, int] = (6, 13, 17)


class ConvBNReLU6(nn.Sequential):
    """Convolution, batch norm, ReLU6 (torchvision's ``Conv2dNormActivation`` keys 0/1/2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3, linear projection (1x1); residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_ch * expansion))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block, adding the input where the block keeps the shape."""
        out = self.conv(x)
        return x + out if self.use_residual else out


def _feature_layers() -> list[nn.Module]:
    """Stem and inverted residual blocks, i.e. ``features[0]`` .. ``features[17]``."""
    layers: list[nn.Module] = [ConvBNReLU6(3, STEM_CHANNELS, stride=2)]
    in_ch = STEM_CHANNELS
    for expansion, out_ch, repeats, first_stride in INVERTED_RESIDUAL_SETTING:
        for index in range(repeats):
            stride = first_stride if index == 0 else 1
            layers.append(InvertedResidual(in_ch, out_ch, stride, expansion))
            in_ch = out_ch
    return layers


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0); ``feature_maps`` gives the taps at strides 8/16/32."""

    classifier_prefixes: tuple[str, ...] = (f"features.{FEATURE_TAPS[-1] + 1}.", "classifier.")

    def __init__(self, *, with_classifier: bool = True) -> None:
        super().__init__()
        layers = _feature_layers()
        self.feature_channels = tuple(_out_channels(layers[index]) for index in FEATURE_TAPS)
        self.with_classifier = with_classifier
        if with_classifier:
            layers.append(ConvBNReLU6(_out_channels(layers[-1]), LAST_CHANNELS, kernel=1))
        self.features = nn.Sequential(*layers)
        if with_classifier:
            self.classifier = nn.Sequential(nn.Dropout(p=DROPOUT),
                                            nn.Linear(LAST_CHANNELS, IMAGENET_CLASSES))

    def feature_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return the outputs of ``features[6]``, ``[13]`` and ``[17]`` (strides 8, 16, 32)."""
        taps = []
        start = 0
        for stop in FEATURE_TAPS:
            for layer in self.features[start:stop + 1]:
                x = layer(x)
            taps.append(x)
            start = stop + 1
        return taps[0], taps[1], taps[2]

    def forward(self, x: Tensor) -> Tensor:
        """ImageNet logits (only for a backbone built with its classifier)."""
        if not self.with_classifier:
            raise RuntimeError("this MobileNetV2 was built without its classifier; "
                               "use feature_maps()")
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def _out_channels(layer: nn.Module) -> int:
    """Output channels of a block: those of its last batch norm."""
    norms = [module for module in layer.modules() if isinstance(module, nn.BatchNorm2d)]
    return norms[-1].num_features


@register_backbone("mobilenet_v2")
def mobilenet_v2(*, with_classifier: bool = True) -> MobileNetV2:
    """MobileNetV2 x1.0 (torchvision ``mobilenet_v2``): taps of 32/96/320 channels."""
    return MobileNetV2(with_classifier=with_classifier)
