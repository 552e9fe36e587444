"""The inference form of MOS (``mos_ros.model.fused``) computes what the trained network does."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from mos_ros.core.config import OUTPUT_NAMES  # noqa: E402
from mos_ros.model import build_model  # noqa: E402
from mos_ros.model.fused import FusedMOS, fuse_for_inference  # noqa: E402
from mos_ros.model.heads import ChannelScale, CrossStitchUnit, StitchConv  # noqa: E402

torch.set_num_threads(1)


def trained_looking_model(variant: str, seed: int = 0):
    """A model whose cross-stitch weights, biases and BN statistics are all non-trivial, so
    that a fold that dropped or mixed up any of them would show."""
    torch.manual_seed(seed)
    model = build_model(variant)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ChannelScale):
                module.param.uniform_(-1.0, 1.0)
            elif isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                module.bias.uniform_(-0.5, 0.5)
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("variant", ["mos-s", "mos-s-0.5", "mos-mbv2"])
@pytest.mark.parametrize("size", [(64, 96), (75, 131)])
def test_fused_outputs_equal_the_trained_network(variant, size):
    model = trained_looking_model(variant)
    fused = fuse_for_inference(model)
    batch = torch.randn(2, 3, *size) * 50
    with torch.inference_mode():
        want, got = model(batch), fused(batch)
    assert len(got) == len(OUTPUT_NAMES)
    for name, a, b in zip(OUTPUT_NAMES, want, got):
        assert b.shape == a.shape, name
        assert torch.allclose(b, a, rtol=1e-4, atol=1e-4 * float(a.abs().max())), name


def test_fused_network_has_no_stitch_convs_or_cross_stitch_left():
    fused = fuse_for_inference(trained_looking_model("mos-s"))
    kinds = {type(module) for module in fused.modules()}
    assert isinstance(fused, FusedMOS)
    assert not kinds & {StitchConv, CrossStitchUnit, ChannelScale}
    # One 1x1 conv per level replaces 6 stitch convs and 3 dense heads.
    assert [level.mix.out_channels for level in fused.levels] == [
        sum(level.splits) for level in fused.levels]


def test_fusing_leaves_the_trained_network_and_its_metadata_alone():
    model = trained_looking_model("mos-s", seed=3)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    fused = fuse_for_inference(model)
    assert fused.meta == model.meta and fused.config == model.config
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
