"""ShuffleNetV2 (Ma et al., 2018) with torchvision's module layout and key names.

The MOS-S detector taps the outputs of ``stage2``/``stage3``/``stage4`` (strides 8/16/32).
``conv5`` and ``fc`` form the ImageNet classification tail.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mos_ros.model.backbones.registry import register_backbone

#: Blocks per stage (stage2, stage3, stage4) for every width of ShuffleNetV2.
STAGE_REPEATS: tuple[int, int, int] = (4, 8, 4)
STEM_CHANNELS = 24
CLASSIFIER_CHANNELS = 1024
IMAGENET_CLASSES = 1000
#: Channel shuffle mixes the two halves of each block's output.
SHUFFLE_GROUPS = 2


@dataclass(frozen=True)
class ShuffleNetWidth:
    """Output channels of stage2, stage3 and stage4 for one width multiplier."""

    stage_channels: tuple[int, int, int]


WIDTHS: dict[str, ShuffleNetWidth] = {
    "x0_5": ShuffleNetWidth((48, 96, 192)),
    "x1_0": ShuffleNetWidth((116, 232, 464)),
}


def channel_shuffle(x: Tensor, groups: int = SHUFFLE_GROUPS) -> Tensor:
    """Interleave channel groups.

    Sizes are read from ``x.shape`` at run time (no ``unflatten``, which the TorchScript ONNX
    exporter freezes), so exported graphs keep H and W dynamic.
    """
    batch, _, height, width = x.shape
    grouped = x.reshape(batch, groups, -1, height, width).transpose(1, 2)
    return grouped.reshape(batch, -1, height, width)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1,
             groups: int = 1) -> list[nn.Module]:
    """Bias-free convolution followed by batch norm, as a list of layers to splice."""
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch)]


def _pointwise_relu(in_ch: int, out_ch: int) -> list[nn.Module]:
    """1x1 convolution, batch norm and ReLU."""
    return [*_conv_bn(in_ch, out_ch, 1), nn.ReLU(inplace=True)]


class ShuffleBlock(nn.Module):
    """ShuffleNetV2 unit: split (stride 1) or duplicate (stride 2) the input, shuffle after.

    ``branch1`` (depthwise 3x3 + pointwise) exists only in downsampling units; ``branch2``
    (pointwise, depthwise 3x3, pointwise) always. Key names follow torchvision.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = out_ch // 2
        if stride > 1:
            self.branch1 = nn.Sequential(*_conv_bn(in_ch, in_ch, 3, stride, groups=in_ch),
                                         *_pointwise_relu(in_ch, half))
        else:
            self.branch1 = nn.Sequential()
        branch2_in = in_ch if stride > 1 else half
        self.branch2 = nn.Sequential(*_pointwise_relu(branch2_in, half),
                                     *_conv_bn(half, half, 3, stride, groups=half),
                                     *_pointwise_relu(half, half))
        # No parameters or buffers, so the state_dict keys are unchanged. Used only in the
        # TorchScript trace that pnnx converts (see ``_shuffle``).
        self.shuffle = nn.ChannelShuffle(SHUFFLE_GROUPS)

    def _shuffle(self, x: Tensor) -> Tensor:
        """Channel shuffle; same values on every path, the graph differs for the exporters.

        pnnx turns an ``nn.ChannelShuffle`` module into ncnn's ShuffleChannel layer, but
        :func:`channel_shuffle` (reshape, transpose, reshape with run-time sizes) into
        Reshape/Permute/Reshape layers. With its packed layout on, ncnn's x86 Reshape from
        that 4-D blob back to 3-D is a slow path: ~110 ms for the 116x60x80 blob of the
        first block at 640x480 input (about 0.2 us per element), which made the whole ncnn
        model ~13x slower than onnxruntime (1.3x with ShuffleChannel). ONNX has no
        channel-shuffle operator, so the ONNX export (also a trace) and eager PyTorch keep
        the reshape form.
        """
        if torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            return self.shuffle(x)
        return channel_shuffle(x)

    def forward(self, x: Tensor) -> Tensor:
        """Run both branches, concatenate, then shuffle channels."""
        if self.stride == 1:
            passthrough, processed = x.chunk(2, dim=1)
            out = torch.cat((passthrough, self.branch2(processed)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return self._shuffle(out)


def _make_stage(in_ch: int, out_ch: int, repeats: int) -> nn.Sequential:
    """One downsampling unit followed by ``repeats - 1`` stride-1 units."""
    blocks = [ShuffleBlock(in_ch, out_ch, stride=2)]
    blocks += [ShuffleBlock(out_ch, out_ch, stride=1) for _ in range(repeats - 1)]
    return nn.Sequential(*blocks)


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 backbone; ``feature_maps`` gives stage2/3/4 at strides 8/16/32."""

    classifier_prefixes: tuple[str, ...] = ("conv5.", "fc.")

    def __init__(self, width: ShuffleNetWidth, *, with_classifier: bool = True) -> None:
        super().__init__()
        self.feature_channels = width.stage_channels
        self.conv1 = nn.Sequential(*_conv_bn(3, STEM_CHANNELS, 3, stride=2),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_channels = (STEM_CHANNELS, *width.stage_channels[:-1])
        for index, (in_ch, out_ch, repeats) in enumerate(
                zip(in_channels, width.stage_channels, STAGE_REPEATS)):
            self.add_module(f"stage{index + 2}", _make_stage(in_ch, out_ch, repeats))
        self.with_classifier = with_classifier
        if with_classifier:
            self.conv5 = nn.Sequential(*_pointwise_relu(width.stage_channels[-1],
                                                        CLASSIFIER_CHANNELS))
            self.fc = nn.Linear(CLASSIFIER_CHANNELS, IMAGENET_CLASSES)

    def feature_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return the stage2, stage3 and stage4 outputs (strides 8, 16, 32)."""
        c3 = self.stage2(self.maxpool(self.conv1(x)))
        c4 = self.stage3(c3)
        c5 = self.stage4(c4)
        return c3, c4, c5

    def forward(self, x: Tensor) -> Tensor:
        """ImageNet logits (only for a backbone built with its classifier)."""
        if not self.with_classifier:
            raise RuntimeError("this ShuffleNetV2 was built without its classifier; "
                               "use feature_maps()")
        features = self.conv5(self.feature_maps(x)[-1])
        return self.fc(features.mean(dim=(2, 3)))


@register_backbone("shufflenet_v2_x1_0")
def shufflenet_v2_x1_0(*, with_classifier: bool = True) -> ShuffleNetV2:
    """ShuffleNetV2 x1.0 (torchvision ``shufflenet_v2_x1_0``): 116/232/464 channels."""
    return ShuffleNetV2(WIDTHS["x1_0"], with_classifier=with_classifier)


@register_backbone("shufflenet_v2_x0_5")
def shufflenet_v2_x0_5(*, with_classifier: bool = True) -> ShuffleNetV2:
    """ShuffleNetV2 x0.5 (torchvision ``shufflenet_v2_x0_5``): 48/96/192 channels."""
    return ShuffleNetV2(WIDTHS["x0_5"], with_classifier=with_classifier)
