"""Specification of model export (``mos_ros.export``): ONNX and ncnn files a backend can run.

The models are a seeded, randomly initialised MOS (smallest variant) saved as a checkpoint;
:func:`exported_models` exports it once per test session and ``test_backends`` reuses it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("ncnn")

import onnx  # noqa: E402
import torch  # noqa: E402

from mos_ros.backends.base import ONNX_META_KEY  # noqa: E402
from mos_ros.backends.ncnn_backend import NcnnBackend  # noqa: E402
from mos_ros.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from mos_ros.core.config import INPUT_NAME, ModelMeta, OUTPUT_NAMES  # noqa: E402
from mos_ros.core.errors import ModelFileError  # noqa: E402
from mos_ros.export import EXPORTERS, ExportError, export_model, export_ncnn  # noqa: E402
from mos_ros.export import _unconverted_layers  # noqa: E402
from mos_ros.model import build_model, save_checkpoint  # noqa: E402

torch.set_num_threads(1)

VARIANT = "mos-s-0.5"
DESCRIPTION = "seeded random MOS for export tests"
#: Gain on the final 1x1 convs so that logits spread over several units (a freshly initialised
#: head gives near-uniform pose softmaxes, which would make angle comparisons trivial).
HEAD_GAIN = 20.0
NCNN_FILES = {"model.ncnn.param", "model.ncnn.bin", "meta.json"}


def make_checkpoint(path: Path, seed: int = 0) -> ModelMeta:
    """Save a deterministic random MOS with non-trivial BN statistics and head logits."""
    torch.manual_seed(seed)
    model = build_model(VARIANT).eval()
    scaled = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
            elif (name.endswith("conv1x1") and not name.startswith("stitch_")
                  and isinstance(module, torch.nn.Conv2d)):
                module.weight.mul_(HEAD_GAIN)
                scaled += 1
    assert scaled == len(OUTPUT_NAMES) * 3, "expected one final 1x1 conv per task and level"
    meta = dataclasses.replace(model.meta, description=DESCRIPTION)
    save_checkpoint(path, model, meta)
    return meta


def exported_models(base: Path) -> dict[str, Path]:
    """Checkpoint, ONNX and ncnn files of the test model, made once under ``base``."""
    paths = {"torch": base / "model.pt", "onnxruntime": base / "model.onnx",
             "ncnn": base / "model.ncnn"}
    if not all(p.exists() for p in paths.values()):
        base.mkdir(parents=True, exist_ok=True)
        # Run in ``base`` so that a converter writing into the working directory shows up.
        with contextlib.chdir(base):
            make_checkpoint(paths["torch"])
            export_model(paths["torch"], "onnx", paths["onnxruntime"])
            export_model(paths["torch"], "ncnn", paths["ncnn"])
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return exported_models(tmp_path_factory.getbasetemp() / "mos_models")


# --- ONNX ----------------------------------------------------------------------------------

def test_onnx_passes_the_checker_and_names_input_and_outputs(models):
    proto = onnx.load(str(models["onnxruntime"]))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)


def test_onnx_keeps_batch_height_and_width_dynamic(models):
    proto = onnx.load(str(models["onnxruntime"]))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    assert dims[1].dim_value == 3
    for output in proto.graph.output:
        out_dims = output.type.tensor_type.shape.dim
        assert [d.dim_param for d in out_dims[:2]] == ["batch", "anchors"]


def test_onnx_carries_the_checkpoint_metadata(models):
    proto = onnx.load(str(models["onnxruntime"]))
    props = {p.key: p.value for p in proto.metadata_props}
    meta = ModelMeta.from_json(props[ONNX_META_KEY])
    assert meta.variant == VARIANT and meta.description == DESCRIPTION


def test_onnx_default_opset_is_17(models):
    proto = onnx.load(str(models["onnxruntime"]))
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}


# --- ncnn ----------------------------------------------------------------------------------

def test_ncnn_directory_holds_exactly_param_bin_and_meta(models):
    assert {p.name for p in models["ncnn"].iterdir()} == NCNN_FILES


def test_ncnn_meta_json_is_model_meta_plus_blob_names(models):
    data = json.loads((models["ncnn"] / "meta.json").read_text())
    blobs = data.pop("ncnn")
    assert ModelMeta.from_dict(data).description == DESCRIPTION
    assert set(blobs["outputs"]) == set(OUTPUT_NAMES)
    assert blobs["input"] in (models["ncnn"] / "model.ncnn.param").read_text()


def test_ncnn_channel_shuffle_is_the_native_layer_not_a_reshape_chain(models):
    """ncnn's x86 Reshape back from 4-D is ~10x slower than the whole rest of the network."""
    layers = [line.split()[0] for line in
              (models["ncnn"] / "model.ncnn.param").read_text().splitlines()[2:]]
    shuffles = layers.count("ShuffleChannel")
    assert shuffles == 16  # one per ShuffleNetV2 block
    head_flattens = 3 * 6  # three pyramid levels, six outputs
    assert layers.count("Permute") == head_flattens
    assert layers.count("Reshape") == head_flattens


def test_ncnn_weights_are_stored_in_fp32(models):
    """fp16 storage would halve the file and cost accuracy; parity tests need fp32."""
    model_bytes = 4 * sum(t.numel() for t in torch.load(
        models["torch"], weights_only=True)["state_dict"].values() if t.is_floating_point())
    # BN folds into the convs, so ncnn holds somewhat fewer numbers than the checkpoint.
    assert (models["ncnn"] / "model.ncnn.bin").stat().st_size > 0.75 * model_bytes


def test_export_leaves_no_intermediate_files_behind(models):
    """The pnnx converter writes six side files into its working directory; none may stay."""
    assert {p.name for p in models["torch"].parent.iterdir()} == {
        "model.pt", "model.onnx", "model.ncnn"}


def test_operators_ncnn_lacks_are_found_in_the_param_file(tmp_path):
    """Deformable convolution converts to ``pnnx.Expression``, which ncnn cannot run."""
    param = tmp_path / "model.ncnn.param"
    param.write_text("7767517\n3 3\nInput in0 0 1 in0\npnnx.Expression e 1 1 in0 a\n"
                     "Convolution c 1 1 a out0 0=8\n")
    assert _unconverted_layers(param) == ["pnnx.Expression"]


def test_ncnn_export_refuses_a_file_as_output_directory(models, tmp_path):
    target = tmp_path / "taken.ncnn"
    target.write_text("not a directory")
    with pytest.raises(ExportError, match="taken.ncnn"):
        export_ncnn(models["torch"], target)


# --- both ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(640, 640), (480, 640), (161, 227)])
@pytest.mark.parametrize("backend", [OnnxRuntimeBackend, NcnnBackend])
def test_exported_files_run_at_any_input_size_like_torch(models, backend, size):
    """Dynamic H and W: FPN upsampling and head reshapes must not bake the trace size in."""
    from mos_ros.backends.torch_backend import TorchBackend

    batch = (np.random.default_rng(3).standard_normal((1, 3, *size)) * 50).astype(np.float32)
    name = "onnxruntime" if backend is OnnxRuntimeBackend else "ncnn"
    got = backend(models[name], threads=1).infer(batch)
    want = TorchBackend(models["torch"], device="cpu").infer(batch)
    for output in OUTPUT_NAMES:
        np.testing.assert_allclose(getattr(got, output), getattr(want, output),
                                   rtol=0, atol=1e-4, err_msg=f"{name} {output} at {size}")


def test_export_model_knows_its_formats_and_rejects_others(models, tmp_path):
    assert sorted(EXPORTERS) == ["ncnn", "ncnn-int8", "onnx", "onnx-int8"]
    with pytest.raises(ValueError, match="ncnn, ncnn-int8, onnx, onnx-int8"):
        export_model(models["torch"], "tflite", tmp_path / "x.tflite")


@pytest.mark.parametrize("fmt", ["onnx", "ncnn"])
def test_export_of_a_bad_checkpoint_names_the_file(tmp_path, fmt):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(os.urandom(256))
    with pytest.raises(ModelFileError, match="broken.pt"):
        export_model(bad, fmt, tmp_path / f"out.{fmt}")
    missing = tmp_path / "absent.pt"
    with pytest.raises(ModelFileError, match="absent.pt"):
        export_model(missing, fmt, tmp_path / f"out.{fmt}")
    assert not (tmp_path / f"out.{fmt}").exists()
