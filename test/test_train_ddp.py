"""Data-parallel training under torchrun: two CPU processes (Gloo) train like one process."""
import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mos_ros.train.distributed import DistributedContext
from mos_ros.train.trainer import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
RUN = dict(variant="mos-s-0.5", input_size=96, batch_size=2, iterations=2, lr=0.002,
           warmup_iterations=1, lr_steps=[1.0], workers=0, torch_threads=1, log_every=1,
           checkpoint_every=1000, validation_images=0, device="cpu", amp=False,
           synthetic={"width": 96, "height": 96, "faces_range": [1, 2],
                      "face_px_range": [20.0, 60.0], "augment_probability": 0.0},
           sample={"flip_probability": 0.0, "photometric_probability": 0.0,
                   "crop": {"scales": [1.0]}})
LOSSES = ("total", "cls", "box", "landmarks", "pose")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _losses(folder: Path) -> list[dict[str, float]]:
    with open(folder / "metrics.csv") as handle:
        return [{name: float(row[name]) for name in LOSSES} for row in csv.DictReader(handle)]


def test_environment_without_torchrun_is_one_process_and_bad_values_are_named():
    assert not DistributedContext.from_environment({}).enabled
    context = DistributedContext.from_environment({"RANK": "1", "WORLD_SIZE": "2",
                                                   "LOCAL_RANK": "1"})
    assert context.enabled and not context.is_main
    with pytest.raises(ValueError, match="RANK=2 outside WORLD_SIZE=2"):
        DistributedContext.from_environment({"RANK": "2", "WORLD_SIZE": "2"})


def test_two_gloo_processes_give_the_loss_of_one_process_on_the_global_batch(tmp_path):
    train(TrainConfig.from_dict({**RUN, "output_dir": str(tmp_path / "one")}))
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump({**RUN, "output_dir": str(tmp_path / "two")}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               "-m", "mos_ros.train", "train", str(config)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 2
    for step in (0, 1):  # the second loss is taken after one (warm-up) optimiser step
        for name in LOSSES:
            assert two[step][name] == pytest.approx(one[step][name], rel=1e-3), (step, name)
    assert (tmp_path / "two" / "model_final.pth").is_file()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        sorted(p.name for p in (tmp_path / "one").iterdir())
