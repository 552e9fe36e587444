"""Models for tests and benchmarks that need no trained weights (no ROS here; the ROS
helpers are in :mod:`mos_ros.ros.testing`).

:func:`random_model` gives a deterministic random-weights MOS file, for when no trained model
is needed (timings, message plumbing). Its faces are noise; a score threshold of 0 still gives
``keep_top_k`` of them per image.

torch and the model code (extra [torch]) are imported inside :func:`random_model`.
"""
from __future__ import annotations

from pathlib import Path

from mos_ros.export import export_onnx

#: Variant of :func:`random_model`: the smallest, so tests and benchmarks stay fast on a CPU.
RANDOM_MODEL_VARIANT = "mos-s-0.5"
RANDOM_MODEL_SEED = 0


def random_model(directory: str | Path, variant: str = RANDOM_MODEL_VARIANT,
                 seed: int = RANDOM_MODEL_SEED) -> Path:
    """A random-weights model in ``directory``, exported to ONNX beside its checkpoint.

    Reused when already there, so one test session builds it once.
    """
    import torch

    from mos_ros.model import build_model, save_checkpoint

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / f"{variant}-random-{seed}.onnx"
    checkpoint = directory / f"{variant}-random-{seed}.pt"
    if onnx_path.exists():
        return onnx_path
    if not checkpoint.exists():
        torch.manual_seed(seed)
        model = build_model(variant).eval()
        save_checkpoint(checkpoint, model, model.meta)
    return export_onnx(checkpoint, onnx_path)
