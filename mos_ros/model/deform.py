"""Modulated deformable convolution (DCNv2, Zhu et al., 2019) in plain torch.

Semantics follow the DCNv2 layer the MOS reference code uses, so its weights load unchanged:
``conv_offset_mask`` (a plain conv, zero-initialised) predicts, per output position, 2*K
offsets and K mask logits for the K kernel taps; offsets are interleaved per tap as
(dy, dx) in input pixels, the mask goes through a sigmoid. Samples are bilinear with zeros
outside the image. Sampling uses ``grid_sample`` instead of a custom kernel: slower than
CUDA DCN, but it runs everywhere torch runs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

#: Per kernel tap, the offset conv predicts dy, dx and one mask logit.
OFFSET_VALUES_PER_TAP = 2
MASK_VALUES_PER_TAP = 1


def _tap_positions(offset: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Undeformed sampling rows and columns: shapes (K, Ho, 1) and (K, 1, Wo), in pixels."""
    out_h, out_w = offset.shape[-2:]
    options = {"device": offset.device, "dtype": offset.dtype}
    rows = torch.arange(out_h, **options) * stride[0] - padding[0]
    cols = torch.arange(out_w, **options) * stride[1] - padding[1]
    tap_rows = torch.arange(kernel[0], **options) * dilation[0]
    tap_cols = torch.arange(kernel[1], **options) * dilation[1]
    # Tap k = i * kernel_w + j sits at row offset tap_rows[i] and column offset tap_cols[j].
    tap_rows = tap_rows.repeat_interleave(kernel[1])
    tap_cols = tap_cols.repeat(kernel[0])
    return (rows[None, :, None] + tap_rows[:, None, None],
            cols[None, None, :] + tap_cols[:, None, None])


def _to_grid(rows: Tensor, cols: Tensor, height: int, width: int) -> Tensor:
    """Pixel positions -> ``grid_sample`` coordinates (align_corners=False: pixel p at 2p+1)."""
    grid_x = (2 * cols + 1) / width - 1
    grid_y = (2 * rows + 1) / height - 1
    return torch.stack((grid_x, grid_y), dim=-1)


def modulated_deform_conv2d(x: Tensor, offset: Tensor, mask: Tensor, weight: Tensor,
                            bias: Tensor | None = None, stride: int | tuple[int, int] = 1,
                            padding: int | tuple[int, int] = 0,
                            dilation: int | tuple[int, int] = 1) -> Tensor:
    """Deformable convolution of ``x`` (B, C, H, W).

    ``offset`` is (B, 2K, Ho, Wo) with channel 2k the row and 2k+1 the column shift of tap k
    (k = i * kernel_w + j); ``mask`` is (B, K, Ho, Wo), multiplying each sample. With zero
    offsets and a mask of ones this equals ``F.conv2d`` with the same arguments.
    """
    kernel = (weight.shape[-2], weight.shape[-1])
    taps = kernel[0] * kernel[1]
    base_rows, base_cols = _tap_positions(offset, kernel, _pair(stride), _pair(padding),
                                          _pair(dilation))
    batch, _, out_h, out_w = offset.shape
    shifts = offset.reshape(batch, taps, OFFSET_VALUES_PER_TAP, out_h, out_w)
    rows = base_rows + shifts[:, :, 0]
    cols = base_cols + shifts[:, :, 1]
    grid = _to_grid(rows, cols, x.shape[-2], x.shape[-1])          # (B, K, Ho, Wo, 2)
    grid = grid.reshape(batch, -1, out_w, 2)                        # (B, K*Ho, Wo, 2)
    sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)                    # (B, C, K*Ho, Wo)
    sampled = sampled.reshape(batch, x.shape[1], taps, out_h, out_w) * mask.unsqueeze(1)
    out = torch.einsum("bckhw,ock->bohw", sampled, weight.flatten(2))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer: ``weight``/``bias`` plus the ``conv_offset_mask`` conv (DCNv2 key names).

    The offset/mask conv starts at zero, i.e. regular sampling with every mask at 0.5.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset_mask = nn.Conv2d(
            in_channels, taps * (OFFSET_VALUES_PER_TAP + MASK_VALUES_PER_TAP), self.kernel_size,
            self.stride, self.padding, self.dilation, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform weights scaled by fan-in, zero bias, zero offsets (DCNv2's initialisation)."""
        bound = 1.0 / math.sqrt(self.weight[0].numel())
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Predict offsets and mask from ``x``, then convolve at the shifted positions."""
        taps = self.kernel_size[0] * self.kernel_size[1]
        predicted = self.conv_offset_mask(x)
        offset = predicted[:, :OFFSET_VALUES_PER_TAP * taps]
        mask = torch.sigmoid(predicted[:, OFFSET_VALUES_PER_TAP * taps:])
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias,
                                       self.stride, self.padding, self.dilation)
