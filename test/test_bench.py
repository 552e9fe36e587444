"""`mos bench`: the report is complete and consistent, and the baseline is what it claims.

No test here asserts a speed: timings vary with the machine. They check that every figure is
there, positive and consistent, that the ResNet-50 is torchvision's, and that the baseline
detector's outputs are decoded by mos_ros.core like MOS's.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from mos_ros.bench.baseline import (
    BaselineDetector, HopenetStyle, PoseEstimator, fixed_face_boxes, pose_crop,
    IMAGENET_MEAN_RGB, POSE_INPUT_SIZE)  # noqa: E402
from mos_ros.bench.machine import cpu_model_name  # noqa: E402
from mos_ros.bench.command import main  # noqa: E402
from mos_ros.bench.report import BenchReport, format_report  # noqa: E402
from mos_ros.bench.run import model_file_for, run_benchmark, synthetic_frame  # noqa: E402
from mos_ros.bench.timing import Stat  # noqa: E402
from mos_ros.core.anchors import num_anchors  # noqa: E402
from mos_ros.core.config import ModelMeta  # noqa: E402
from mos_ros.core.postprocess import decode_faces  # noqa: E402
from mos_ros.core.preprocess import prepare  # noqa: E402
from mos_ros.model import build_model, save_checkpoint  # noqa: E402
from mos_ros.bench.resnet import resnet50  # noqa: E402

TINY_HW = (96, 128)
#: torchvision's resnet50(): parameters and state_dict entries (with BN buffers).
RESNET50_PARAMETERS = 25_557_032
RESNET50_STATE_ENTRIES = 320
#: A few torchvision resnet50 keys and their shapes, spanning stem, shortcut, stride, head.
TORCHVISION_RESNET50_SHAPES = {
    "conv1.weight": (64, 3, 7, 7),
    "bn1.running_var": (64,),
    "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer1.0.downsample.1.weight": (256,),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer3.5.bn3.num_batches_tracked": (),
    "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "layer4.2.conv3.weight": (2048, 512, 1, 1),
    "fc.weight": (1000, 2048),
    "fc.bias": (1000,),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random-weights MOS-S checkpoint (only time is measured)."""
    path = tmp_path_factory.mktemp("bench") / "mos-s-random.pt"
    return save_checkpoint(path, build_model("mos-s").eval())


@pytest.fixture(scope="module")
def report(checkpoint) -> BenchReport:
    """One tiny run: torch only, one small size, two repeats, baseline with one face."""
    return run_benchmark(checkpoint, backends=("torch",), sizes=(TINY_HW,), repeats=2,
                         warmup=0, threads=1, baseline_repeats=1, face_counts=(1,),
                         baseline_input_hw=TINY_HW)


def _positive(stat: Stat) -> bool:
    return 0 < stat.median_ms <= stat.p90_ms and math.isfinite(stat.p90_ms)


# --- the report -----------------------------------------------------------------------------

def test_report_has_a_row_per_backend_and_size_with_positive_stage_times(report):
    assert [(r.backend, r.input_hw) for r in report.results] == [("torch", TINY_HW)]
    stages = report.results[0].stages
    for stat in (stages.preprocess, stages.network, stages.postprocess, stages.total):
        assert _positive(stat)


def test_stage_medians_add_up_to_the_total(report):
    # With two repeats a median is a mean, so the split must sum to the total exactly.
    s = report.results[0].stages
    split = s.preprocess.median_ms + s.network.median_ms + s.postprocess.median_ms
    assert split == pytest.approx(s.total.median_ms, rel=1e-9)


def test_baseline_rows_compare_with_mos_on_the_same_run(report):
    base = report.baseline
    assert base is not None and base.mos_backend == "torch"
    assert [row.faces for row in base.rows] == [1]
    row = base.rows[0]
    for stat in (row.mos, row.detector, row.pose_sequential, row.pose_batched):
        assert _positive(stat)
    assert row.sequential_ms == pytest.approx(
        row.detector.median_ms + row.pose_sequential.median_ms)
    assert row.ratio == pytest.approx(row.sequential_ms / row.mos.median_ms)
    assert base.detector_anchors == num_anchors(ModelMeta().priors, *TINY_HW)


def test_printed_report_names_machine_rows_and_the_synthetic_faces(report):
    text = format_report(report)
    assert "machine:" in text and "torch threads 1" in text
    assert "torch " in text and "128x96" in text
    assert "NOT detected" in text and "fixed boxes" in text
    assert "seq/MOS" in text


def test_a_backend_without_a_model_file_is_skipped_with_the_reason(tmp_path):
    missing = tmp_path / "absent.onnx"
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        model_file_for("ncnn", missing, tmp_path)
    report = run_benchmark(missing, backends=("ncnn",), sizes=(TINY_HW,), repeats=1,
                           warmup=0, threads=1)
    assert report.results == () and report.baseline is None
    assert report.skipped[0].backend == "ncnn" and "no checkpoint" in report.skipped[0].reason
    assert "skipped ncnn" in format_report(report)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        run_benchmark("model.pt", backends=("tensorflow",))


def test_command_line_prints_the_report(checkpoint, capsys):
    assert main(["--model", str(checkpoint), "--backends", "torch", "--sizes", "128x96",
                 "--repeats", "1", "--warmup", "0", "--threads", "1", "--no-baseline"]) == 0
    out = capsys.readouterr().out
    assert "128x96" in out and "MOS latency per stage" in out


# --- ResNet-50 and the pose network -----------------------------------------------------------

def test_resnet50_has_torchvision_key_names_shapes_and_parameter_count():
    net = resnet50()
    state = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == RESNET50_PARAMETERS
    assert len(state) == RESNET50_STATE_ENTRIES
    for key, shape in TORCHVISION_RESNET50_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    # ResNet v1.5 (torchvision): the stride sits on the 3x3 conv of a downsampling block.
    assert net.layer2[0].conv2.stride == (2, 2) and net.layer2[0].conv1.stride == (1, 1)


def test_resnet50_maps_an_image_to_class_logits_and_strided_features():
    net = resnet50().eval()
    x = torch.zeros(1, 3, 64, 96)
    with torch.inference_mode():
        maps = net.feature_maps(x)
        logits = net(x)
    assert [tuple(m.shape[1:]) for m in maps] == [(512, 8, 12), (1024, 4, 6), (2048, 2, 3)]
    assert tuple(logits.shape) == (1, 1000)


def test_hopenet_style_net_has_three_bin_heads_and_no_imagenet_classifier():
    state = HopenetStyle().state_dict()
    for angle in ("yaw", "pitch", "roll"):
        assert tuple(state[f"fc_{angle}.weight"].shape) == (66, 2048)
    assert "fc.weight" not in state and "layer4.2.conv3.weight" in state


def test_pose_crop_is_rgb_224_and_imagenet_normalised():
    # A BGR image whose colour is ImageNet's mean normalises to zero in every channel.
    mean_bgr = [round(v * 255) for v in reversed(IMAGENET_MEAN_RGB)]
    image = np.empty((120, 160, 3), dtype=np.uint8)
    image[:] = mean_bgr
    crop = pose_crop(image, (40, 30, 100, 90))
    assert crop.shape == (3, POSE_INPUT_SIZE, POSE_INPUT_SIZE) and crop.dtype == np.float32
    assert np.abs(crop).max() < 0.01


def test_per_face_and_batched_pose_give_the_same_angles():
    image = synthetic_frame(120, 160)
    boxes = fixed_face_boxes(2, image.shape[:2])
    estimator = PoseEstimator()
    one_by_one = estimator.estimate(image, boxes)
    batched = estimator.estimate_batched(image, boxes)
    assert len(one_by_one) == len(batched) == 2
    for a, b in zip(one_by_one, batched):
        assert (a.yaw, a.pitch, a.roll) == pytest.approx((b.yaw, b.pitch, b.roll), abs=1e-2)


@pytest.mark.parametrize("count", [1, 5, 10, 20])
def test_fixed_face_boxes_are_as_many_as_asked_and_inside_the_frame(count):
    boxes = fixed_face_boxes(count, (480, 640))
    assert boxes.shape == (count, 4)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 640).all() and (boxes[:, 3] <= 480).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()


# --- the baseline detector decodes through core ---------------------------------------------

@pytest.mark.parametrize("input_hw", [(96, 128), (100, 130), (480, 640)])
def test_baseline_detector_predicts_one_output_per_core_anchor(input_hw):
    detector = BaselineDetector(input_size=input_hw)
    batch = np.zeros((1, 3, *input_hw), dtype=np.float32)
    raw = detector.raw_outputs(batch)
    expected = num_anchors(detector.meta.priors, *input_hw)
    assert raw.loc.shape == (1, expected, 4) and raw.conf.shape == (1, expected, 2)
    assert raw.landms.shape == (1, expected, 10) and raw.yaw.shape[:2] == (1, expected)


def _heads_that_only_see_faces_on_level(detector: BaselineDetector, level: int) -> None:
    """Zero every regression, and make only pyramid ``level`` call each anchor a face."""
    with torch.no_grad():
        for name, heads in detector.net.heads.items():
            for index, head in enumerate(heads):
                head.conv1x1.weight.zero_()
                head.conv1x1.bias.zero_()
                if name == "conf":
                    head.conv1x1.bias.view(-1, 2)[:, 1] = 10.0 if index == level else -10.0


def test_baseline_detections_land_on_core_anchors_of_the_right_level():
    # With zero regressions each face sits exactly on its anchor; only the stride-32 level
    # fires, so every landmark is at a stride-32 cell centre if the anchor order matches core.
    detector = BaselineDetector(input_size=TINY_HW)
    _heads_that_only_see_faces_on_level(detector, level=2)
    image = synthetic_frame(*TINY_HW)
    batch, letterbox = prepare(image, TINY_HW, detector.meta.input_mean)
    faces = decode_faces(detector.raw_outputs(batch), detector.meta, letterbox)
    assert faces
    stride = detector.meta.priors.steps[2]
    centres = np.concatenate([face.landmarks for face in faces])
    np.testing.assert_allclose(centres % stride, stride / 2, atol=1e-3)
    boxes = detector.detect_boxes(image)
    assert boxes.shape == (len(faces), 4)


# --- summaries and machine description -------------------------------------------------------

def test_stat_reports_median_and_90th_percentile():
    stat = Stat.of([float(v) for v in range(1, 12)])  # 1 .. 11 ms
    assert stat.median_ms == 6.0 and stat.p90_ms == pytest.approx(10.0)
    with pytest.raises(ValueError, match="empty"):
        Stat.of([])


def test_cpu_model_comes_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t: avx\n")
    assert cpu_model_name(cpuinfo) == "Example CPU @ 2.0GHz"


def test_each_backend_finds_its_sibling_of_an_int8_model(tmp_path):
    files = {suffix: tmp_path / f"m{suffix}" for suffix in (".int8.onnx", ".onnx", ".pt")}
    for path in files.values():
        path.write_bytes(b"")
    (tmp_path / "m.ncnn").mkdir()
    assert model_file_for("torch", files[".int8.onnx"], tmp_path) == files[".pt"]
    assert model_file_for("ncnn", files[".int8.onnx"], tmp_path) == tmp_path / "m.ncnn"
    assert model_file_for("onnxruntime", files[".int8.onnx"], tmp_path) == files[".int8.onnx"]
    assert model_file_for("onnxruntime", files[".pt"], tmp_path) == files[".onnx"]


def test_compare_times_files_side_by_side_as_ratios_to_the_first(capsys):
    from mos_ros.bench.compare import compare_models, format_compare
    from mos_ros.resources import find_shared_file

    first = find_shared_file("models/mos-s-synthetic.onnx")
    second = find_shared_file("models/mos-mbv2-faces.int8.onnx")
    report = compare_models([first, second], TINY_HW, rounds=2, repeats=2, warmup=0,
                            threads=1)
    reference, other = report.models
    assert reference.ratios == (1.0, 1.0) and len(other.round_ms) == 2
    assert all(ms > 0 for ms in other.round_ms)
    assert np.allclose(other.ratios, np.array(other.round_ms) / np.array(reference.round_ms))
    assert other.median_ratio == pytest.approx(float(np.median(other.ratios)))
    text = format_compare(report)
    assert "ratio" in text and "mos-mbv2-faces.int8.onnx" in text and "1.00x" in text
    with pytest.raises(ValueError, match="at least two"):
        compare_models([first], TINY_HW, rounds=1, repeats=1, warmup=0)
    assert main(["--model", str(first), "--compare", str(second), "--sizes", "128x96",
                 "--rounds", "1", "--repeats", "1", "--warmup", "0", "--threads", "1"]) == 0
    assert "mos-mbv2-faces.int8.onnx" in capsys.readouterr().out
