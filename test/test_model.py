"""Specification of the MOS network in PyTorch (``mos_ros.model``)."""
from __future__ import annotations

import dataclasses
import datetime
import math
import os

import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mos_ros.core.anchors import generate_anchors  # noqa: E402
from mos_ros.core.config import OUTPUT_NAMES, ModelMeta, PriorConfig  # noqa: E402
from mos_ros.core.errors import ModelFileError  # noqa: E402
from mos_ros.model import (
    MOS, VARIANTS, build_model, load_checkpoint, load_official_weights, save_checkpoint)
from mos_ros.model.backbones import build_backbone, load_imagenet_weights  # noqa: E402
from mos_ros.model.checkpoint import read_checkpoint_extra  # noqa: E402
from mos_ros.model.deform import ModulatedDeformConv2d, modulated_deform_conv2d  # noqa: E402
from mos_ros.model.heads import CrossStitchUnit  # noqa: E402

torch.set_num_threads(1)

VARIANT_NAMES = ("mos-s", "mos-s-0.5", "mos-mbv2")
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
SMALL = (64, 96)


def anchor_count(height: int, width: int) -> int:
    """N as core's anchor layout gives it; the network must predict exactly these anchors."""
    return len(generate_anchors(PriorConfig(), height, width))


def seeded_model(variant: str, seed: int = 0, dcn: bool = False) -> MOS:
    torch.manual_seed(seed)
    return build_model(variant, dcn=dcn).eval()


def randomise_batch_norms(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give BN running stats non-trivial values, so loaded buffers make a visible difference."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator))
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
    return model


@pytest.fixture(scope="module")
def models() -> dict[str, MOS]:
    return {name: seeded_model(name) for name in VARIANT_NAMES}


def run(model: MOS, height: int, width: int, batch: int = 1, seed: int = 1):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(torch.randn(batch, 3, height, width))


# --- output contract -----------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANT_NAMES)
@pytest.mark.parametrize("size", [(640, 640), (480, 640), (321, 479)])
def test_outputs_are_six_tensors_with_one_row_per_anchor(models, variant, size):
    outputs = run(models[variant], *size)
    n = anchor_count(*size)
    widths = {"loc": 4, "conf": 2, "landms": 10, "yaw": 66, "pitch": 66, "roll": 66}
    assert [tuple(o.shape) for o in outputs] == [(1, n, widths[name]) for name in OUTPUT_NAMES]


def test_640_by_640_gives_16800_anchors(models):
    assert anchor_count(640, 640) == 16800
    assert run(models["mos-s"], 640, 640)[0].shape[1] == 16800


def test_train_mode_returns_the_same_raw_tuple_as_eval():
    model = seeded_model("mos-s-0.5").train()
    outputs = model(torch.randn(2, 3, *SMALL))
    assert isinstance(outputs, tuple) and len(outputs) == len(OUTPUT_NAMES)
    assert outputs[1].shape == (2, anchor_count(*SMALL), 2)
    assert not torch.allclose(outputs[1].softmax(-1).sum(-1), outputs[1].sum(-1))  # logits


def test_anchor_order_is_level_then_row_then_column_then_anchor(models):
    model = models["mos-s-0.5"]
    captured = {}
    hooks = [model.ClassHead[level].conv1x1.register_forward_hook(
        lambda module, args, out, level=level: captured.__setitem__(level, out))
        for level in range(3)]
    try:
        conf = run(model, *SMALL)[1][0]
    finally:
        for hook in hooks:
            hook.remove()
    start = 0
    for level in range(3):
        raw = captured[level][0]                       # (anchors * 2, H, W)
        _, height, width = raw.shape
        for row, col, anchor in [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 1),
                                 (height - 1, width - 1, 1)]:
            index = start + (row * width + col) * ANCHORS_PER_CELL + anchor
            expected = raw[anchor * 2:anchor * 2 + 2, row, col]
            assert torch.equal(conf[index], expected)
        start += height * width * ANCHORS_PER_CELL
    assert start == conf.shape[0]


def test_images_in_a_batch_do_not_affect_each_other(models):
    model = models["mos-s-0.5"]
    torch.manual_seed(3)
    batch = torch.randn(2, 3, *SMALL)
    with torch.no_grad():
        together = model(batch)
        alone = model(batch[1:])
    for joint, single in zip(together, alone):
        torch.testing.assert_close(joint[1:], single, rtol=1e-4, atol=1e-5)


def test_eval_mode_is_deterministic(models):
    first, second = run(models["mos-mbv2"], *SMALL), run(models["mos-mbv2"], *SMALL)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_variants_registry_and_metadata():
    assert set(VARIANT_NAMES) <= set(VARIANTS)
    assert VARIANTS["mos-s"].backbone == "shufflenet_v2_x1_0"
    assert VARIANTS["mos-s-0.5"].backbone == "shufflenet_v2_x0_5"
    assert VARIANTS["mos-mbv2"].backbone == "mobilenet_v2"
    model = build_model("mos-s-0.5")
    assert isinstance(model.meta, ModelMeta)
    assert model.meta.variant == "mos-s-0.5" and model.meta.pose_bins.num_bins == 66
    assert not model.config.dcn and build_model("mos-s-0.5", dcn=True).config.dcn
    with pytest.raises(dataclasses.FrozenInstanceError):
        VARIANTS["mos-s"].dcn = True


def test_unknown_variant_is_a_value_error_listing_known_ones():
    with pytest.raises(ValueError, match="mos-s-0.5.*mos-mbv2|mos-mbv2.*mos-s"):
        build_model("mos-xl")


def test_deformable_model_runs_at_odd_sizes():
    outputs = run(seeded_model("mos-s-0.5", dcn=True), 67, 45)
    assert outputs[0].shape == (1, anchor_count(67, 45), 4)


# --- backbones: torchvision key names ------------------------------------------------------

def bn_keys(prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in
            ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]


def torchvision_shufflenet_keys() -> list[str]:
    """Keys of torchvision's ``shufflenet_v2_x*``, from its architecture."""
    keys = ["conv1.0.weight", *bn_keys("conv1.1")]
    for stage, repeats in zip((2, 3, 4), (4, 8, 4)):
        for block in range(repeats):
            prefix = f"stage{stage}.{block}"
            if block == 0:
                keys += [f"{prefix}.branch1.0.weight", *bn_keys(f"{prefix}.branch1.1"),
                         f"{prefix}.branch1.2.weight", *bn_keys(f"{prefix}.branch1.3")]
            for conv, bn in ((0, 1), (3, 4), (5, 6)):
                keys += [f"{prefix}.branch2.{conv}.weight", *bn_keys(f"{prefix}.branch2.{bn}")]
    return keys + ["conv5.0.weight", *bn_keys("conv5.1"), "fc.weight", "fc.bias"]


def torchvision_mobilenet_keys() -> list[str]:
    """Keys of torchvision's ``mobilenet_v2``, from its architecture."""
    keys = ["features.0.0.weight", *bn_keys("features.0.1")]
    for block in range(1, 18):
        prefix = f"features.{block}.conv"
        if block == 1:   # expansion 1: no expanding 1x1 conv
            keys += [f"{prefix}.0.0.weight", *bn_keys(f"{prefix}.0.1"),
                     f"{prefix}.1.weight", *bn_keys(f"{prefix}.2")]
        else:
            keys += [f"{prefix}.0.0.weight", *bn_keys(f"{prefix}.0.1"),
                     f"{prefix}.1.0.weight", *bn_keys(f"{prefix}.1.1"),
                     f"{prefix}.2.weight", *bn_keys(f"{prefix}.3")]
    return keys + ["features.18.0.weight", *bn_keys("features.18.1"),
                   "classifier.1.weight", "classifier.1.bias"]


TORCHVISION = {
    # name: (keys, parameter count published by torchvision, feature channels)
    "shufflenet_v2_x1_0": (torchvision_shufflenet_keys(), 2_278_604, (116, 232, 464)),
    "shufflenet_v2_x0_5": (torchvision_shufflenet_keys(), 1_366_792, (48, 96, 192)),
    "mobilenet_v2": (torchvision_mobilenet_keys(), 3_504_872, (32, 96, 320)),
}


@pytest.mark.parametrize("name", TORCHVISION)
def test_backbone_has_torchvision_keys_and_parameter_count(name):
    keys, params, _ = TORCHVISION[name]
    backbone = build_backbone(name, with_classifier=True)
    assert list(backbone.state_dict()) == keys
    assert sum(p.numel() for p in backbone.parameters()) == params
    assert len(keys) == (314 if name == "mobilenet_v2" else 338)


@pytest.mark.parametrize("name", TORCHVISION)
def test_backbone_feature_maps_have_strides_8_16_32(name):
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        maps = backbone.feature_maps(torch.randn(1, 3, 65, 97))
    channels = TORCHVISION[name][2]
    assert backbone.feature_channels == channels
    assert [tuple(m.shape) for m in maps] == [
        (1, c, math.ceil(65 / s), math.ceil(97 / s)) for c, s in zip(channels, STRIDES)]


def test_backbone_spot_check_shapes_of_known_torchvision_tensors():
    shuffle = build_backbone("shufflenet_v2_x1_0", with_classifier=True).state_dict()
    assert shuffle["conv1.0.weight"].shape == (24, 3, 3, 3)
    assert shuffle["stage2.0.branch1.0.weight"].shape == (24, 1, 3, 3)
    assert shuffle["stage2.1.branch2.0.weight"].shape == (58, 58, 1, 1)
    assert shuffle["fc.weight"].shape == (1000, 1024)
    mobile = build_backbone("mobilenet_v2", with_classifier=True).state_dict()
    assert mobile["features.2.conv.0.0.weight"].shape == (96, 16, 1, 1)
    assert mobile["features.17.conv.2.weight"].shape == (320, 960, 1, 1)
    assert mobile["classifier.1.weight"].shape == (1000, 1280)


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "mobilenet_v2"])
def test_imagenet_weights_load_from_a_torchvision_style_file(tmp_path, name):
    torch.manual_seed(5)
    imagenet = randomise_batch_norms(build_backbone(name, with_classifier=True), 6).eval()
    path = tmp_path / f"{name}-imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    full = load_imagenet_weights(build_backbone(name, with_classifier=True), path).eval()
    features_only = load_imagenet_weights(build_backbone(name), path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(full(x), imagenet(x))
        for got, expected in zip(features_only.feature_maps(x), imagenet.feature_maps(x)):
            assert torch.equal(got, expected)


def test_imagenet_weights_of_another_backbone_are_rejected_naming_the_file(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save(build_backbone("mobilenet_v2", with_classifier=True).state_dict(), path)
    with pytest.raises(ModelFileError, match="wrong.pth.*missing keys: conv1"):
        load_imagenet_weights(build_backbone("shufflenet_v2_x1_0"), path)


# --- the public reference layout (MOS-S.pth / MOS-M.pth) -----------------------------------

REFERENCE_TASKS = ("classhead", "bboxhead", "landmarkhead", "pose_y", "pose_p", "pose_r")
REFERENCE_STITCH = ("stitch_classhead", "stitch_BboxHead", "stitch_LandmarkHead",
                    "stitch_PoseHead_y", "stitch_PoseHead_p", "stitch_PoseHead_r")


def reference_block_keys(prefix: str, dcn: bool) -> list[str]:
    """A 3x3 neck block: ``conv_bn`` (0/1) or ``DeformConv`` (conv + actf) in the reference."""
    if dcn:
        return [f"{prefix}.conv.weight", f"{prefix}.conv.bias",
                f"{prefix}.conv.conv_offset_mask.weight", f"{prefix}.conv.conv_offset_mask.bias",
                *bn_keys(f"{prefix}.actf.0")]
    return [f"{prefix}.0.weight", *bn_keys(f"{prefix}.1")]


def reference_neck_and_head_keys(dcn: bool) -> set[str]:
    """Non-backbone keys of the reference ``MOS`` module (models/MOS.py, models/net.py)."""
    keys = []
    for index in (1, 2, 3):
        keys += [f"fpn.output{index}.0.weight", *bn_keys(f"fpn.output{index}.1")]
    keys += reference_block_keys("fpn.merge1", dcn) + reference_block_keys("fpn.merge2", dcn)
    for ssh in ("ssh1", "ssh2", "ssh3"):
        for conv in ("conv3X3", "conv5X5_1", "conv5X5_2", "conv7X7_2", "conv7x7_3"):
            keys += reference_block_keys(f"{ssh}.{conv}", dcn)
    for level in range(3):
        for stitch in REFERENCE_STITCH:
            keys += [f"{stitch}.{level}.conv1x1.weight", f"{stitch}.{level}.conv1x1.bias"]
        for head in ("ClassHead", "BboxHead", "LandmarkHead"):
            keys += [f"{head}.{level}.conv1x1.weight", f"{head}.{level}.conv1x1.bias"]
        for head in ("PoseHead_y", "PoseHead_p", "PoseHead_r"):
            keys += [f"{head}.{level}.conv1x1.weight", f"{head}.{level}.conv1x1.bias",
                     f"{head}.{level}.Conv_pose.0.weight",
                     *bn_keys(f"{head}.{level}.Conv_pose.1")]
        keys += [f"cross_stitch.fpn{level + 1}.cross_stitch_unit.{target}.{source}.param"
                 for target in REFERENCE_TASKS for source in REFERENCE_TASKS]
    return set(keys)


UNUSED_CONV_POSE = {"Conv_pose.0.weight": (128, 64, 3, 3),
                    **{key: (128,) for key in bn_keys("Conv_pose.1")[:4]},
                    "Conv_pose.1.num_batches_tracked": ()}


def reference_body_name(key: str, variant: str) -> str:
    """Our ``body.*`` key -> the reference's (MOS-M splits MobileNetV2 into three groups)."""
    if variant != "mos-mbv2" or not key.startswith("body."):
        return key
    _, _, index, rest = key.split(".", 3)
    index = int(index)
    groups = (("feature_6", 14), ("feature_4", 7), ("feature_2", 0))
    group, start = next((g, s) for g, s in groups if index >= s)
    return f"body.{group}.{index - start}.{rest}"


def as_reference_checkpoint(model: MOS, variant: str) -> dict[str, torch.Tensor]:
    """The model's weights as the reference training saved them (DataParallel, spare block)."""
    state = {f"module.{reference_body_name(key, variant)}": value.clone()
             for key, value in model.state_dict().items()}
    for key, shape in UNUSED_CONV_POSE.items():
        state[f"module.{key}"] = torch.ones(shape)
    return state


@pytest.mark.parametrize("dcn", [False, True])
def test_neck_and_head_keys_are_the_reference_keys(dcn):
    model = build_model("mos-s-0.5", dcn=dcn)
    ours = {key for key in model.state_dict() if not key.startswith("body.")}
    assert ours == reference_neck_and_head_keys(dcn)


def test_reference_shapes_of_known_tensors():
    state = build_model("mos-s", dcn=True).state_dict()
    expected = {
        "body.stage4.0.branch1.2.weight": (232, 232, 1, 1),
        "fpn.output1.0.weight": (64, 116, 1, 1),
        "fpn.output3.0.weight": (64, 464, 1, 1),
        "fpn.merge1.conv.weight": (64, 64, 3, 3),
        "fpn.merge1.conv.conv_offset_mask.weight": (27, 64, 3, 3),
        "ssh1.conv3X3.conv.weight": (32, 64, 3, 3),
        "ssh2.conv5X5_1.conv.weight": (16, 64, 3, 3),
        "ssh3.conv7x7_3.actf.0.running_var": (16,),
        "stitch_classhead.0.conv1x1.weight": (64, 64, 1, 1),
        "cross_stitch.fpn3.cross_stitch_unit.pose_r.classhead.param": (64,),
        "ClassHead.0.conv1x1.weight": (4, 64, 1, 1),
        "BboxHead.1.conv1x1.weight": (8, 64, 1, 1),
        "LandmarkHead.2.conv1x1.weight": (20, 64, 1, 1),
        "PoseHead_y.0.Conv_pose.0.weight": (128, 64, 3, 3),
        "PoseHead_r.2.conv1x1.weight": (132, 128, 1, 1),
    }
    assert {key: tuple(state[key].shape) for key in expected} == expected
    plain = build_model("mos-mbv2").state_dict()
    assert plain["fpn.merge2.0.weight"].shape == (64, 64, 3, 3)
    assert plain["fpn.output1.0.weight"].shape == (64, 32, 1, 1)
    assert plain["fpn.output3.0.weight"].shape == (64, 320, 1, 1)
    assert not any(key.startswith(("body.conv5", "body.fc", "body.features.18"))
                   for key in list(state) + list(plain))


@pytest.mark.parametrize("variant,dcn", [("mos-s", True), ("mos-mbv2", True), ("mos-s", False)])
def test_reference_weights_load_and_reproduce_the_source_model(tmp_path, variant, dcn):
    source = randomise_batch_norms(seeded_model(variant, seed=11, dcn=dcn), 12)
    path = tmp_path / "MOS-reference.pth"
    torch.save(as_reference_checkpoint(source, variant), path)
    target = load_official_weights(seeded_model(variant, seed=13, dcn=dcn), path)
    for got, expected in zip(run(target, *SMALL), run(source, *SMALL)):
        assert torch.equal(got, expected)


def test_class_scores_flow_through_stitch_bboxhead_as_in_the_reference():
    # The reference feeds cross-stitch slot "classhead" from stitch_BboxHead (and "bboxhead"
    # from stitch_classhead); trained weights depend on it. With identity cross-stitch
    # weights, zeroing stitch_BboxHead must leave only ClassHead's bias in the class logits.
    model = seeded_model("mos-s-0.5")
    with torch.no_grad():
        for unit in model.cross_stitch.values():
            for target, row in unit.cross_stitch_unit.items():
                for source, scale in row.items():
                    scale.param.fill_(1.0 if source == target else 0.0)
        for stitch in model.stitch_BboxHead:
            stitch.conv1x1.weight.zero_()
            stitch.conv1x1.bias.zero_()
    loc, conf = run(model, *SMALL)[:2]
    biases = torch.cat([head.conv1x1.bias.view(-1, 2) for head in model.ClassHead])
    per_level = [math.ceil(SMALL[0] / s) * math.ceil(SMALL[1] / s) for s in STRIDES]
    expected = torch.cat([biases[2 * level:2 * level + 2].repeat(cells, 1)
                          for level, cells in enumerate(per_level)])
    torch.testing.assert_close(conf[0], expected)
    assert loc.std() > 0


def test_reference_weights_in_a_state_dict_wrapper_load_too():
    source = seeded_model("mos-s-0.5", seed=2)
    wrapped = {"state_dict": as_reference_checkpoint(source, "mos-s-0.5")}
    target = load_official_weights(seeded_model("mos-s-0.5", seed=3), wrapped)
    assert torch.equal(target.state_dict()["ClassHead.1.conv1x1.bias"],
                       source.state_dict()["ClassHead.1.conv1x1.bias"])


def test_reference_weights_with_an_unknown_key_are_rejected_by_name():
    state = as_reference_checkpoint(seeded_model("mos-s-0.5"), "mos-s-0.5")
    state["module.ClassHead.3.conv1x1.weight"] = torch.zeros(4, 64, 1, 1)
    with pytest.raises(ModelFileError, match=r"unexpected keys: ClassHead\.3\.conv1x1\.weight"):
        load_official_weights(seeded_model("mos-s-0.5"), state)


def test_reference_weights_with_a_missing_key_are_rejected_by_name():
    state = as_reference_checkpoint(seeded_model("mos-s-0.5"), "mos-s-0.5")
    del state["module.fpn.output2.0.weight"]
    with pytest.raises(ModelFileError, match=r"missing keys: fpn\.output2\.0\.weight"):
        load_official_weights(seeded_model("mos-s-0.5"), state)


def test_only_the_top_level_conv_pose_block_is_tolerated():
    state = as_reference_checkpoint(seeded_model("mos-s-0.5"), "mos-s-0.5")
    state["module.Conv_pose_extra.weight"] = torch.zeros(1)
    with pytest.raises(ModelFileError, match="Conv_pose_extra"):
        load_official_weights(seeded_model("mos-s-0.5"), state)


def test_deformable_reference_weights_into_a_plain_model_say_to_use_dcn():
    state = as_reference_checkpoint(seeded_model("mos-s-0.5", dcn=True), "mos-s-0.5")
    with pytest.raises(ModelFileError, match="dcn=True"):
        load_official_weights(seeded_model("mos-s-0.5"), state)


def test_reference_weights_with_a_wrong_shape_are_rejected_by_name():
    state = as_reference_checkpoint(seeded_model("mos-s-0.5"), "mos-s-0.5")
    with pytest.raises(ModelFileError, match=r"shape mismatch.*body\.stage2\.0"):
        load_official_weights(seeded_model("mos-s"), state)


# --- our checkpoint format -----------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_outputs_meta_and_extra(tmp_path):
    model = randomise_batch_norms(seeded_model("mos-s-0.5", seed=21), 22)
    path = save_checkpoint(tmp_path / "m.pt", model, model.meta, extra={"epoch": 3, "ap": [0.9]})
    loaded, meta = load_checkpoint(path)
    assert meta == model.meta and loaded.meta == model.meta
    assert not loaded.training
    for got, expected in zip(run(loaded, *SMALL), run(model, *SMALL)):
        assert torch.equal(got, expected)
    assert read_checkpoint_extra(path) == {"epoch": 3, "ap": [0.9]}
    assert not list(tmp_path.glob("*.partial"))


def test_deformable_checkpoint_rebuilds_a_deformable_model(tmp_path):
    model = seeded_model("mos-s-0.5", dcn=True)
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "dcn.pt", model))
    assert loaded.config.dcn


def test_checkpoint_extra_must_be_plain_data(tmp_path):
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "m.pt", seeded_model("mos-s-0.5"), extra={"when": object()})


def test_missing_checkpoint_file_is_a_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="nothing-here.pt.*no such model file"):
        load_checkpoint(tmp_path / "nothing-here.pt")


def test_truncated_checkpoint_is_a_model_file_error(tmp_path):
    path = save_checkpoint(tmp_path / "full.pt", seeded_model("mos-s-0.5"))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated.pt"):
        load_checkpoint(truncated)


@pytest.mark.parametrize("content", [b"", b"not a model at all\n", bytes(range(256)) * 4])
def test_garbage_file_is_a_model_file_error(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="garbage.pt"):
        load_checkpoint(path)


def test_torch_file_that_is_not_our_checkpoint_is_a_model_file_error(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(seeded_model("mos-s-0.5").state_dict(), path)
    with pytest.raises(ModelFileError, match="plain.pth.*not a mos_ros checkpoint"):
        load_checkpoint(path)


def test_file_with_pickled_objects_is_refused_not_executed(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"format": "mos_ros.checkpoint/1", "meta": datetime.date(2021, 10, 15)}, path)
    with pytest.raises(ModelFileError, match="objects.pt"):
        load_checkpoint(path)


def write_checkpoint(path, model, meta_json):
    torch.save({"format": "mos_ros.checkpoint/1", "meta": meta_json,
                "state_dict": model.state_dict()}, path)
    return path


def test_checkpoint_of_unknown_variant_is_a_model_file_error(tmp_path):
    model = seeded_model("mos-s-0.5")
    path = write_checkpoint(tmp_path / "x.pt", model, ModelMeta(variant="mos-xl").to_json())
    with pytest.raises(ModelFileError, match="unknown MOS variant 'mos-xl'"):
        load_checkpoint(path)


def test_checkpoint_whose_weights_do_not_fit_its_variant_is_a_model_file_error(tmp_path):
    model = seeded_model("mos-s-0.5")
    path = write_checkpoint(tmp_path / "x.pt", model, ModelMeta(variant="mos-s").to_json())
    with pytest.raises(ModelFileError, match="x.pt.*shape mismatch"):
        load_checkpoint(path)


def test_checkpoint_with_bad_metadata_is_a_model_file_error(tmp_path):
    path = write_checkpoint(tmp_path / "x.pt", seeded_model("mos-s-0.5"), "{not json")
    with pytest.raises(ModelFileError, match="x.pt.*metadata"):
        load_checkpoint(path)


# --- cross-stitch ---------------------------------------------------------------------------

def test_cross_stitch_starts_at_0_9_for_the_own_task_and_0_1_for_others():
    unit = CrossStitchUnit(("a", "b", "c"), channels=5)
    for target in "abc":
        for source in "abc":
            expected = 0.9 if source == target else 0.1
            assert torch.allclose(unit.cross_stitch_unit[target][source].param,
                                  torch.full((5,), expected))


def test_cross_stitch_output_is_the_channelwise_linear_combination():
    tasks = ("a", "b", "c")
    unit = CrossStitchUnit(tasks, channels=4)
    torch.manual_seed(7)
    weights = torch.randn(3, 3, 4)       # weights[i, j, c] = a_ij for channel c
    with torch.no_grad():
        for i, target in enumerate(tasks):
            for j, source in enumerate(tasks):
                unit.cross_stitch_unit[target][source].param.copy_(weights[i, j])
    inputs = torch.randn(3, 2, 4, 5, 6)  # task, batch, channel, H, W
    mixed = unit({task: inputs[index] for index, task in enumerate(tasks)})
    expected = torch.einsum("ijc,jbchw->ibchw", weights, inputs)
    for index, task in enumerate(tasks):
        torch.testing.assert_close(mixed[task], expected[index])


# --- deformable convolution -----------------------------------------------------------------

@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), (2, 0, 1)])
def test_deformable_conv_with_zero_offsets_equals_plain_conv(stride, padding, dilation):
    torch.manual_seed(8)
    x, weight, bias = torch.randn(2, 5, 11, 9), torch.randn(7, 5, 3, 3), torch.randn(7)
    expected = F.conv2d(x, weight, bias, stride, padding, dilation)
    offset = torch.zeros(2, 18, *expected.shape[-2:])
    mask = torch.ones(2, 9, *expected.shape[-2:])
    got = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("axis", ["row", "column"])
@pytest.mark.parametrize("shift", [1.0, 0.5])
def test_deformable_offsets_are_interleaved_row_then_column_shifts(axis, shift):
    torch.manual_seed(9)
    x, weight = torch.randn(1, 3, 8, 10), torch.randn(4, 3, 3, 3)
    # Sampling one pixel further along an axis = a plain conv whose zero padding is moved
    # from the start to the end of that axis; half a pixel = the mean of both (bilinear).
    moved_padding = (1, 1, 0, 2) if axis == "row" else (0, 2, 1, 1)
    unshifted = F.conv2d(x, weight, None, 1, 1)
    shifted = F.conv2d(F.pad(x, moved_padding), weight)
    expected = shifted if shift == 1.0 else (unshifted + shifted) / 2
    offset = torch.zeros(1, 9, 2, 8, 10)
    offset[:, :, 0 if axis == "row" else 1] = shift
    got = modulated_deform_conv2d(x, offset.reshape(1, 18, 8, 10), torch.ones(1, 9, 8, 10),
                                  weight, None, 1, 1, 1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_deformable_mask_channel_k_scales_kernel_tap_k():
    torch.manual_seed(10)
    x, weight = torch.randn(1, 3, 6, 7), torch.randn(2, 3, 3, 3)
    mask = torch.ones(1, 9, 6, 7)
    mask[:, 5] = 0                       # tap 5 = row 1, column 2 of the 3x3 kernel
    without_tap = weight.clone()
    without_tap[:, :, 1, 2] = 0
    got = modulated_deform_conv2d(x, torch.zeros(1, 18, 6, 7), mask, weight, None, 1, 1, 1)
    torch.testing.assert_close(got, F.conv2d(x, without_tap, None, 1, 1), rtol=1e-4, atol=1e-4)


def test_deformable_layer_starts_as_a_half_weighted_plain_conv_and_learns_offsets():
    torch.manual_seed(11)
    layer = ModulatedDeformConv2d(4, 6, kernel_size=3, padding=1)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 9, 8)
    out = layer(x)
    # DCNv2 convention: zero-initialised offsets and mask logits (sigmoid(0) = 0.5).
    expected = 0.5 * F.conv2d(x, layer.weight, None, 1, 1) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    out.square().sum().backward()
    assert layer.conv_offset_mask.weight.grad.abs().sum() > 0


# --- export ---------------------------------------------------------------------------------

@pytest.mark.skipif(os.environ.get("MOS_SLOW_TESTS") != "1", reason="slow: MOS_SLOW_TESTS=1")
def test_onnx_export_keeps_height_and_width_dynamic(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = seeded_model("mos-s-0.5")
    path = tmp_path / "mos.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 320, 320),), str(path), dynamo=False,
                      input_names=["input"], output_names=list(OUTPUT_NAMES),
                      dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(1, 3, 321, 479)
    got = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    for onnx_out, torch_out in zip(got, expected):
        torch.testing.assert_close(torch.from_numpy(onnx_out), torch_out, rtol=1e-3, atol=1e-4)
