"""Helpers for tests and benchmarks of the ROS layer (no mocks: real models, real DDS).

* :func:`random_model`: a deterministic random-weights MOS file, for when no trained model is
  needed (timings, message plumbing). Its faces are noise; a score threshold of 0 still gives
  ``keep_top_k`` of them per image.
* :func:`spin_until`: spin an executor until a condition holds, e.g. a publisher matched its
  subscriptions (discovery takes seconds between processes; never sleep a fixed time for it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

#: Variant of :func:`random_model`: the smallest, so tests and benchmarks stay fast on a CPU.
RANDOM_MODEL_VARIANT = "mos-s-0.5"
RANDOM_MODEL_SEED = 0
SPIN_STEP_S = 0.02


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
    from mos_ros.export import export_onnx

    return export_onnx(checkpoint, onnx_path)


def spin_until(executor, condition: Callable[[], bool], timeout_s: float) -> bool:
    """Spin ``executor`` (or, with None, just poll) until ``condition()``; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        if executor is None:
            time.sleep(SPIN_STEP_S)
        else:
            executor.spin_once(timeout_sec=SPIN_STEP_S)
    return True
