"""Specification of the inference backends (``mos_ros.backends``).

Every backend returns the same raw outputs as the torch model, and after the one shared
decode (core) the same boxes, landmarks, probabilities and angles. Bad model files fail with
:class:`ModelFileError` naming the file; unavailable accelerators fall back to CPU with a log.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("ncnn")

import onnx  # noqa: E402
import torch  # noqa: E402

from mos_ros.backends import available_backends, open_backend  # noqa: E402
from mos_ros.backends.base import ONNX_META_KEY  # noqa: E402
from mos_ros.core.anchors import generate_anchors  # noqa: E402
from mos_ros.core.codec import decode_boxes, decode_landmarks  # noqa: E402
from mos_ros.core.config import OUTPUT_NAMES, PoseBins  # noqa: E402
from mos_ros.core.errors import ImageError, ModelFileError  # noqa: E402
from mos_ros.core.pose import bins_to_degrees, softmax  # noqa: E402
from test_export import DESCRIPTION, exported_models  # noqa: E402

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPORTED = ("onnxruntime", "ncnn")
#: Small inputs, one square and one not, both batches of two (ncnn loops over the batch).
SIZES = [(160, 160), (128, 192)]
BATCH = 2
#: Raw logits: fp32 runtimes differ from torch only by summation order (~1e-7 here).
RAW_ATOL = 1e-5
#: Decoded boxes and landmarks are normalised to [0, 1]-ish; probabilities are in [0, 1].
DECODED_ATOL = 1e-4
#: Angles (degrees) are softmax expectations over bin centres c_k spanning 198 degrees. Logits
#: off by at most e move the angle by Cov_p(delta, c) <= 2e * max|c_k - mean| <= 2e * 198, so the
#: raw tolerance bounds it at ~4e-3 degrees; measured differences are ~1.5e-4 degrees.
_BINS = PoseBins()
ANGLE_ATOL_DEG = 2 * RAW_ATOL * _BINS.num_bins * _BINS.width_deg


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return exported_models(tmp_path_factory.getbasetemp() / "mos_models")


@pytest.fixture(scope="module")
def backends(models):
    return {name: open_backend(name, path, threads=1) for name, path in models.items()}


def random_batch(size, seed=0, batch=BATCH):
    """Mean-subtracted-image-like input: zero-centred, tens of units wide."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 3, *size)) * 50).astype(np.float32)


def decoded(raw, meta, size):
    """Per image: boxes and landmarks (normalised), face probability, angles (degrees)."""
    anchors = generate_anchors(meta.priors, *size)
    variances = meta.priors.variances
    return [{
        "boxes": decode_boxes(raw.loc[i], anchors, variances),
        "landmarks": decode_landmarks(raw.landms[i], anchors, variances),
        "face_probability": softmax(raw.conf[i])[:, 1],
        **{angle: bins_to_degrees(getattr(raw, angle)[i], meta.pose_bins)
           for angle in ("yaw", "pitch", "roll")},
    } for i in range(raw.loc.shape[0])]


# --- registry ------------------------------------------------------------------------------

def test_registry_lists_the_three_backends():
    assert available_backends() == ["ncnn", "onnxruntime", "torch"]


def test_unknown_backend_is_refused_with_the_known_names(models):
    with pytest.raises(ValueError, match="unknown backend 'tflite'.*ncnn, onnxruntime, torch"):
        open_backend("tflite", models["torch"])


def test_unknown_option_is_refused_with_the_accepted_ones(models):
    with pytest.raises(ValueError, match="'gpu'.*providers, threads"):
        open_backend("onnxruntime", models["onnxruntime"], gpu=True)


def test_importing_backends_does_not_import_any_runtime():
    code = ("import sys, mos_ros.backends as b; b.available_backends(); "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'ncnn', 'onnx', 'pnnx') "
            "if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "[]"


# --- parity --------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", EXPORTED)
def test_raw_outputs_match_torch(backends, name, size):
    batch = random_batch(size)
    got, want = backends[name].infer(batch), backends["torch"].infer(batch)
    for output in OUTPUT_NAMES:
        assert getattr(got, output).shape == getattr(want, output).shape
        np.testing.assert_allclose(getattr(got, output), getattr(want, output),
                                   rtol=0, atol=RAW_ATOL, err_msg=f"{name} {output}")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", EXPORTED)
def test_decoded_faces_match_torch(backends, name, size):
    batch = random_batch(size, seed=1)
    meta = backends["torch"].meta
    got = decoded(backends[name].infer(batch), meta, size)
    want = decoded(backends["torch"].infer(batch), meta, size)
    for image_got, image_want in zip(got, want):
        for key in ("boxes", "landmarks", "face_probability"):
            np.testing.assert_allclose(image_got[key], image_want[key], rtol=0,
                                       atol=DECODED_ATOL, err_msg=f"{name} {key}")
        for angle in ("yaw", "pitch", "roll"):
            np.testing.assert_allclose(image_got[angle], image_want[angle], rtol=0,
                                       atol=ANGLE_ATOL_DEG, err_msg=f"{name} {angle}")


def test_test_model_has_spread_out_pose_predictions(backends):
    """Guards the parity test: near-uniform bin softmaxes would make angle checks trivial."""
    raw = backends["torch"].infer(random_batch(SIZES[0]))
    yaw = bins_to_degrees(raw.yaw[0], backends["torch"].meta.pose_bins)
    assert np.ptp(yaw) > 10.0


def test_every_backend_reads_the_same_metadata(backends):
    metas = {name: backend.meta for name, backend in backends.items()}
    assert metas["onnxruntime"] == metas["torch"] == metas["ncnn"]
    assert metas["torch"].description == DESCRIPTION


def test_devices_are_described(backends):
    assert backends["torch"].device == "cpu"
    assert backends["onnxruntime"].device == "onnxruntime[CPUExecutionProvider]"
    assert backends["ncnn"].device == "ncnn[cpu]"
    assert {b.name for b in backends.values()} == {"torch", "onnxruntime", "ncnn"}


@pytest.mark.parametrize("name", ["torch", "onnxruntime", "ncnn"])
@pytest.mark.parametrize("bad, message", [
    (np.zeros((1, 3, 32, 32), np.float64), "float32"),
    (np.zeros((3, 32, 32), np.float32), "shape"),
    (np.zeros((1, 1, 32, 32), np.float32), "shape"),
    (np.zeros((0, 3, 32, 32), np.float32), "empty"),
])
def test_a_wrong_batch_is_an_image_error(backends, name, bad, message):
    with pytest.raises(ImageError, match=message):
        backends[name].infer(bad)


# --- fall-backs ----------------------------------------------------------------------------

def test_unavailable_onnxruntime_providers_fall_back_to_cpu_with_one_warning(models, caplog):
    import onnxruntime

    if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(
            onnxruntime.get_available_providers()):
        pytest.skip("this machine has a GPU execution provider")
    with caplog.at_level(logging.WARNING, logger="mos_ros.backends"):
        backend = open_backend("onnxruntime", models["onnxruntime"],
                               providers=["tensorrt", "CUDAExecutionProvider"])
    assert backend.device == "onnxruntime[CPUExecutionProvider]"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "TensorrtExecutionProvider" in text and "CUDAExecutionProvider" in text
    assert "falling back to CPUExecutionProvider" in text


def test_unknown_onnxruntime_provider_name_is_refused(models):
    with pytest.raises(ValueError, match="'quantum'.*cuda"):
        open_backend("onnxruntime", models["onnxruntime"], providers=["quantum"])


def test_unavailable_cuda_falls_back_to_cpu_for_torch(models, caplog):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with caplog.at_level(logging.WARNING, logger="mos_ros.backends"):
        backend = open_backend("torch", models["torch"], device="cuda")
    assert backend.device == "cpu"
    assert any("CUDA requested" in r.getMessage() for r in caplog.records)


def test_unavailable_vulkan_falls_back_to_cpu_for_ncnn(models, caplog):
    import ncnn

    if ncnn.get_gpu_count() > 0:
        pytest.skip("this machine has a Vulkan device")
    with caplog.at_level(logging.WARNING, logger="mos_ros.backends"):
        backend = open_backend("ncnn", models["ncnn"], use_vulkan=True)
    assert backend.device == "ncnn[cpu]"
    assert any("Vulkan requested" in r.getMessage() for r in caplog.records)


# --- bad model files -----------------------------------------------------------------------

def truncated(path, target):
    data = path.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def random_bytes(target):
    target.write_bytes(np.random.default_rng(0).bytes(4096))
    return target


@pytest.mark.parametrize("name, filename", [
    ("torch", "model.pt"), ("onnxruntime", "model.onnx"), ("ncnn", "model.ncnn")])
def test_missing_model_names_the_path(tmp_path, name, filename):
    with pytest.raises(ModelFileError, match=re.escape(str(tmp_path / filename))):
        open_backend(name, tmp_path / filename)


@pytest.mark.parametrize("name, suffix", [("torch", ".pt"), ("onnxruntime", ".onnx")])
def test_truncated_or_random_model_file_names_the_path(models, tmp_path, name, suffix):
    for bad in (truncated(models[name], tmp_path / f"truncated{suffix}"),
                random_bytes(tmp_path / f"random{suffix}")):
        with pytest.raises(ModelFileError, match=re.escape(str(bad))):
            open_backend(name, bad)


def test_onnx_file_without_our_metadata_names_the_path(models, tmp_path):
    proto = onnx.load(str(models["onnxruntime"]))
    del proto.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(proto, str(plain))
    expected = f"{re.escape(str(plain))}.*{re.escape(ONNX_META_KEY)}"
    with pytest.raises(ModelFileError, match=expected):
        open_backend("onnxruntime", plain)


def test_checkpoint_given_to_onnxruntime_names_the_path(models):
    with pytest.raises(ModelFileError, match=re.escape(str(models["torch"]))):
        open_backend("onnxruntime", models["torch"])


def test_checkpoint_given_to_ncnn_names_the_path(models):
    with pytest.raises(ModelFileError, match=f"{re.escape(str(models['torch']))}.*directory"):
        open_backend("ncnn", models["torch"])


@pytest.fixture
def ncnn_copy(models, tmp_path):
    return shutil.copytree(models["ncnn"], tmp_path / "copy.ncnn")


@pytest.mark.parametrize("damage, culprit", [
    pytest.param(lambda d: truncated(d / "model.ncnn.bin", d / "model.ncnn.bin"),
                 "model.ncnn.bin", id="truncated-bin"),
    pytest.param(lambda d: random_bytes(d / "model.ncnn.param"), "model.ncnn.param",
                 id="random-param"),
    pytest.param(lambda d: (d / "meta.json").unlink(), "meta.json", id="no-meta"),
    pytest.param(lambda d: (d / "meta.json").write_text('{"variant": "mos-s-0.5"}'),
                 "meta.json", id="meta-without-blob-names"),
])
def test_damaged_ncnn_directory_names_the_file(ncnn_copy, damage, culprit):
    damage(ncnn_copy)
    with pytest.raises(ModelFileError, match=f"{re.escape(str(ncnn_copy))}.*{re.escape(culprit)}"):
        open_backend("ncnn", ncnn_copy)


def test_one_device_string_names_the_device_of_every_backend():
    from mos_ros.backends import device_options

    assert device_options("torch", "cuda:1", 2) == {"device": "cuda:1", "threads": 2}
    assert device_options("onnxruntime", "tensorrt, cuda,cpu") == {
        "providers": ["tensorrt", "cuda", "cpu"]}
    assert device_options("ncnn", "vulkan") == {"use_vulkan": True}
    assert device_options("onnxruntime", "", 0) == {}
